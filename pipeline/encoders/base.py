"""The encoder protocol every embedding model implements, and the spec-string grammar."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from pipeline.core.errors import EncoderSpecError, LookalikeError
from pipeline.core.files import sha256_file
from pipeline.core.records import UNKNOWN_VERSION, Distance, EncodedBatch

NoFacePolicy = Literal["skip", "center"]

_SPEC_RE = re.compile(
    r"^(?P<family>[a-z][a-z0-9_-]*)(?::(?P<arch>[^@+]+))?(?P<options>(?:\+[a-z][a-z0-9_-]*)*)(?:@(?P<weights>.+))?$"
)


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed spec string `family[:arch][+option…][@weights]`, e.g. `clip:ViT-B-32@laion2b_s34b_b79k` or
    `phash:8+mirror` (options are switches a family declares in its registry entry)."""

    family: str
    arch: str | None = None
    weights: str | None = None
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EncoderSpec:
        """Parse a spec string.

        Raises:
            EncoderSpecError: the text does not follow `family[:arch][+option…][@weights]`.
        """
        match = _SPEC_RE.match(text.strip())
        if match is None:
            raise EncoderSpecError(
                f"bad encoder spec {text!r}: expected family[:arch][+option…][@weights], e.g. "
                "'clip:ViT-B-32@laion2b_s34b_b79k' or 'phash:8+mirror' (run `lookalike encoders` for the list)"
            )
        options = tuple(match["options"].split("+")[1:])
        return cls(match["family"], match["arch"], match["weights"], options)

    def __str__(self) -> str:
        text = self.family
        if self.arch:
            text += f":{self.arch}"
        text += "".join(f"+{option}" for option in self.options)
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

    An encoder may also set `multivector = True`: `encode` then gives each item a (K, D) set of vectors, stored as a
    Qdrant multivector and scored by MAX_SIM (late interaction); read it through `is_multivector`. One whose `encode`
    runs no model (it only stacks what `prepare` computed, as phash's and dlib's do) may set `model_free = True`: a
    Ray ingest then encodes it in its decode tasks, with no encode actors; read it through `has_model`.

    `version` identifies the embedding space behind `name`: a hand-bumped behaviour version ("dlib:2"), plus what
    identifies the weights where the name does not (a local file's digest, a checkpoint's hash). Collections record
    it, and refuse an encoder of the same name whose version differs (its vectors would not compare).
    """

    name: str  # canonical spec string, e.g. "dlib" or "clip:ViT-B-32@laion2b_s34b_b79k"
    dim: int
    distance: Distance
    version: str  # e.g. "dlib:2" or "clip:1@sha256:0123456789abcdef"; read it through `encoder_version`

    def prepare(self, image: Image.Image) -> Any: ...

    def encode(self, items: Sequence[Any]) -> EncodedBatch: ...


@runtime_checkable
class TextEncoder(Protocol):
    """An encoder that can also embed text into its image space (CLIP's text tower), for text-to-image search.

    `encode_text` returns float32 (N, D) rows comparable with the image vectors of the same encoder, normalised the
    same way (unit length for cosine encoders).
    """

    name: str
    dim: int

    def encode_text(self, texts: Sequence[str]) -> np.ndarray: ...


def as_text_encoder(encoder: object) -> TextEncoder:
    """The encoder, checked to have a text tower.

    Raises:
        LookalikeError: it has none (dlib, facenet, phash, siamese: image-only encoders).
    """
    if not isinstance(encoder, TextEncoder):
        name = getattr(encoder, "name", type(encoder).__name__)
        raise LookalikeError(
            f"encoder {name} has no text tower; text search needs a CLIP collection (clip:…, e.g. "
            "clip:ViT-B-32@laion2b_s34b_b79k)"
        )
    return encoder


def encoder_version(encoder: object) -> str:
    """An encoder's `version`, or UNKNOWN_VERSION for one that declares none (e.g. a plugin written before versions);
    an unknown version is accepted by any collection."""
    version = getattr(encoder, "version", None)
    return version if isinstance(version, str) and version else UNKNOWN_VERSION


def has_model(encoder: object) -> bool:
    """Whether an encoder's `encode` runs a model: True unless it sets `model_free = True` (see `Encoder`)."""
    return getattr(encoder, "model_free", False) is not True


def is_multivector(encoder: object) -> bool:
    """Whether an encoder gives each item a set of vectors (see `Encoder`); False for one that does not say."""
    return getattr(encoder, "multivector", False) is True


def weights_digest(path: Path) -> str:
    """`sha256:` and the first 16 hex digits of a weights file's sha256: identifies local weights in a version.

    Cached per process by path, size and modification time, so building the same encoder again does not re-read it.
    """
    stat = path.stat()
    return _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return f"sha256:{sha256_file(path)[:16]}"


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
