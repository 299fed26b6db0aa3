"""The encoder protocol every embedding model implements, and the spec-string grammar."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from pipeline.errors import EncoderSpecError
from pipeline.records import Distance, EncodedBatch

NoFacePolicy = Literal["skip", "center"]

_SPEC_RE = re.compile(r"^(?P<family>[a-z][a-z0-9_-]*)(?::(?P<arch>[^@]+))?(?:@(?P<weights>.+))?$")


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed spec string `family[:arch][@weights]`, e.g. `clip:ViT-B-32@laion2b_s34b_b79k`."""

    family: str
    arch: str | None = None
    weights: str | None = None

    @classmethod
    def parse(cls, text: str) -> EncoderSpec:
        """Parse a spec string.

        Raises:
            EncoderSpecError: the text does not follow `family[:arch][@weights]`.
        """
        match = _SPEC_RE.match(text.strip())
        if match is None:
            raise EncoderSpecError(
                f"bad encoder spec {text!r}: expected family[:arch][@weights], e.g. 'clip:ViT-B-32@laion2b_s34b_b79k' "
                "(run `lookalike encoders` for the list)"
            )
        return cls(match["family"], match["arch"], match["weights"])

    def __str__(self) -> str:
        text = self.family
        if self.arch:
            text += f":{self.arch}"
        if self.weights:
            text += f"@{self.weights}"
        return text


@dataclass(frozen=True)
class EncoderOptions:
    """Settings shared by all encoders, built once at the CLI edge."""

    no_face: NoFacePolicy = "skip"
    amp: bool = True


@runtime_checkable
class Encoder(Protocol):
    """An image embedding model.

    `prepare` is CPU work on one decoded RGB image and runs in DataLoader workers, so it must be
    picklable and must not touch the GPU. `encode` turns a batch of prepared items into vectors on the
    encoder's device, under `torch.inference_mode()`.
    """

    name: str  # canonical spec string, e.g. "dlib" or "clip:ViT-B-32@laion2b_s34b_b79k"
    dim: int
    distance: Distance

    def prepare(self, image: Image.Image) -> Any: ...

    def encode(self, items: Sequence[Any]) -> EncodedBatch: ...


def vector_name(encoder_name: str) -> str:
    """The Qdrant named-vector key for an encoder: its spec with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", encoder_name).strip("-")


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-normalise (N, D) to unit length as float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def main_face_index(boxes: np.ndarray, width: int, height: int) -> int:
    """Which detected face an image is about: the largest, penalised by its distance from the centre.

    facenet-pytorch's "center_weighted_size" rule (box area − 2 × squared centre offset). LFW and most
    portrait collections label the central person; the largest face alone picks a bystander in front.

    Args:
        boxes: (K, 4) x0, y0, x1, y1 in pixels, K ≥ 1.
        width, height: image size in the same pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    offsets = (cx - width / 2) ** 2 + (cy - height / 2) ** 2
    return int(np.argmax(areas - 2.0 * offsets))
