"""FaceNet embeddings via facenet-pytorch: MTCNN detection + alignment, InceptionResnetV1 (512-d).

Spec `facenet[@WEIGHTS]`, WEIGHTS = vggface2 (default) | casia-webface | a local state_dict file | none
(random init with a fixed seed, for tests). MTCNN's own weights ship in the wheel.

Where MTCNN runs depends on the device. On CUDA it runs in `encode`, batched on the GPU: its image
pyramid is many small convolutions that a GPU does in one pass for a whole batch, while CPU workers would
be the bottleneck. Elsewhere it runs in `prepare`, inside the DataLoader workers: on a CPU, batching buys
nothing (measured ~25-45 ms per 250×250 image either way), but N workers detect N images at once.
MTCNN batches need equal image sizes, so `encode` groups pending images by size.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.core.device import is_cuda
from pipeline.core.errors import EncoderSpecError, LookalikeError, WeightsUnavailableError
from pipeline.core.records import Distance, EncodedBatch
from pipeline.encoders.base import EncoderOptions, EncoderSpec, NoFacePolicy, main_face_index, weights_digest

FACE_SIZE = 160  # InceptionResnetV1 input
MARGIN = 14  # context around the box, in pixels of the 160-px crop (as facenet-pytorch's LFW evaluation)
MAX_SIDE = 1024  # images are shrunk to this longest side first: bounds MTCNN's pyramid and host→device copies
RANDOM_SEED = 0
# Bump when the same spec would embed an image differently (face choice, margin, alignment, standardisation); a
# local weights file's digest is appended. 2: the main face is the centre-weighted largest (`main_face_index`, was
# the largest) and `--no-face center` embeds a centre crop.
VERSION = "facenet:2"
NO_FACE = "no face found"
CENTRE_FALLBACK = "no face: centre-crop fallback"
RELEASES = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
PRETRAINED = {
    "vggface2": RELEASES + "20180402-114759-vggface2.pt",
    "casia-webface": RELEASES + "20180408-102900-casia-webface.pt",
}
_INSTALL_HINT = "pip install 'lookalike[face]'"


@dataclass(frozen=True)
class FacenetItem:
    """A prepared facenet input: an aligned face, an image still to be searched (CUDA), or neither (no face)."""

    face: torch.Tensor | None = None  # (3, 160, 160) float32, standardised as (x - 127.5) / 128
    image: np.ndarray | None = None  # (H, W, 3) uint8, when detection runs in encode
    note: str | None = None


class FacenetEncoder:
    """MTCNN + InceptionResnetV1; vectors are L2-normalised, compared by cosine."""

    dim = 512
    distance: Distance = "cosine"

    def __init__(
        self,
        name: str,
        recogniser: torch.nn.Module,
        device: torch.device,
        options: EncoderOptions,
        detect_in_prepare: bool | None = None,
        version: str = VERSION,
    ) -> None:
        self.name = name
        self.version = version
        self._device = device
        self._no_face: NoFacePolicy = options.no_face
        self._amp = options.amp and is_cuda(device)
        self._detect_in_prepare = not is_cuda(device) if detect_in_prepare is None else detect_in_prepare
        self._recogniser: torch.nn.Module | None = recogniser.to(device).eval()
        self._mtcnn: Any = None if self._detect_in_prepare else _create_mtcnn(device)
        self._cpu_mtcnn: Any = None  # built lazily in each process that runs prepare()

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> FacenetEncoder:
        """Build from `facenet[@vggface2|@casia-webface|@/path/to/state_dict.pt|@none]`.

        Raises:
            LookalikeError: facenet-pytorch is not installed.
            EncoderSpecError: an architecture was given, or an unknown weights tag.
            WeightsUnavailableError: the weights cannot be downloaded or read.
        """
        if spec.arch is not None:
            raise EncoderSpecError(f"facenet takes no architecture; use e.g. 'facenet@vggface2', not {str(spec)!r}")
        label, recogniser = load_recogniser(spec.weights or "vggface2")
        local = label not in (*PRETRAINED, "none")  # a local file: its path is the label
        version = f"{VERSION}@{weights_digest(Path(label))}" if local else VERSION
        return cls(f"facenet@{label}", recogniser, device, options, version=version)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers only call prepare(): never ship the recogniser or a CUDA MTCNN to them.
        state = dict(self.__dict__)
        state.update(_recogniser=None, _mtcnn=None, _cpu_mtcnn=None)
        return state

    def prepare(self, image: Image.Image) -> FacenetItem:
        """Shrink to MAX_SIDE; off CUDA also detect and align here (see the module docstring)."""
        pixels = _bounded_rgb(image)  # (H, W, 3) uint8
        if not self._detect_in_prepare:
            return FacenetItem(image=pixels)
        if self._cpu_mtcnn is None:
            self._cpu_mtcnn = _create_mtcnn(torch.device("cpu"))
        with torch.inference_mode():
            face = detect_and_align(torch.from_numpy(pixels)[None], self._cpu_mtcnn)[0]
        return self._apply_policy(face, pixels)

    def encode(self, items: Sequence[FacenetItem]) -> EncodedBatch:
        """Detect what `prepare` left pending, then embed every face in one recogniser batch."""
        if self._recogniser is None:
            raise RuntimeError("this FacenetEncoder was unpickled for prepare() only; encode with the original")
        resolved = self._resolve_pending(items)
        ok = np.array([item.face is not None for item in resolved], dtype=bool)
        vectors = np.zeros((len(resolved), self.dim), dtype=np.float32)
        if ok.any():
            # Faces aligned in workers are on the CPU, faces aligned in _resolve_pending already on the device.
            faces = torch.stack(
                [item.face.to(self._device, non_blocking=True) for item in resolved if item.face is not None]
            )  # (K, 3, 160, 160)
            with torch.inference_mode(), _autocast(self._device, self._amp):
                embeddings = self._recogniser(faces)  # (K, 512)
            vectors[ok] = F.normalize(embeddings.float(), dim=1).cpu().numpy()
        return EncodedBatch(vectors=vectors, ok=ok, notes=tuple(item.note for item in resolved))

    def _resolve_pending(self, items: Sequence[FacenetItem]) -> list[FacenetItem]:
        """Run MTCNN on the device for items that still carry an image, one batch per image size."""
        resolved = list(items)
        by_size: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
        for index, item in enumerate(items):
            if item.image is not None:
                by_size[item.image.shape].append((index, item.image))
        if by_size and self._mtcnn is None:
            self._mtcnn = _create_mtcnn(self._device)
        for group in by_size.values():
            batch = torch.from_numpy(np.stack([image for _, image in group]))  # (B, H, W, 3) uint8
            with torch.inference_mode():
                faces = detect_and_align(batch.to(self._device, non_blocking=True), self._mtcnn)
            for (index, image), face in zip(group, faces, strict=True):
                resolved[index] = self._apply_policy(face, image)
        return resolved

    def _apply_policy(self, face: torch.Tensor | None, pixels: np.ndarray) -> FacenetItem:
        if face is not None:
            return FacenetItem(face=face)
        if self._no_face == "skip":
            return FacenetItem(note=NO_FACE)
        return FacenetItem(face=centre_face(pixels), note=CENTRE_FALLBACK)


def detect_and_align(images: torch.Tensor, mtcnn: Any) -> list[torch.Tensor | None]:
    """The main face of each image (`main_face_index`), cropped with MARGIN, resized to 160 and standardised.

    Calls MTCNN's detector directly: `MTCNN.forward` builds ragged numpy arrays that NumPy 2 rejects
    when some images of a batch have a face and others none, and its crop path breaks on CUDA tensors.

    Args:
        images: (B, H, W, 3) uint8 on the MTCNN's device.
        mtcnn: a facenet_pytorch.MTCNN.

    Returns:
        Per image, a (3, 160, 160) float32 tensor on the same device, or None where no face was found.
    """
    from facenet_pytorch.models.utils.detect_face import detect_face

    boxes, _ = detect_face(
        images, mtcnn.min_face_size, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, mtcnn.thresholds, mtcnn.factor, images.device
    )
    height, width = images.shape[1:3]
    faces: list[torch.Tensor | None] = []
    for image, found in zip(images, boxes, strict=True):
        found = np.asarray(found, dtype=np.float32).reshape(-1, 5)  # (k, x0 y0 x1 y1 prob)
        if len(found) == 0:
            faces.append(None)
            continue
        x0, y0, x1, y1 = _with_margin(found[main_face_index(found[:, :4], width, height), :4], width, height)
        if x1 <= x0 or y1 <= y0:
            faces.append(None)
            continue
        crop = image[y0:y1, x0:x1].permute(2, 0, 1)[None].float()  # (1, 3, h, w)
        faces.append(_standardise(F.interpolate(crop, size=(FACE_SIZE, FACE_SIZE), mode="area")[0]))
    return faces


def centre_face(pixels: np.ndarray) -> torch.Tensor:
    """The centred square of an image as a face crop: (3, 160, 160), standardised like a detected face."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = torch.from_numpy(pixels[top : top + side, left : left + side]).permute(2, 0, 1)[None].float()
    return _standardise(F.interpolate(crop, size=(FACE_SIZE, FACE_SIZE), mode="area")[0])


def _with_margin(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """facenet-pytorch's extract_face box arithmetic: MARGIN is in output pixels, clamped to the image."""
    dx = MARGIN * (box[2] - box[0]) / (FACE_SIZE - MARGIN)
    dy = MARGIN * (box[3] - box[1]) / (FACE_SIZE - MARGIN)
    return (
        int(max(box[0] - dx / 2, 0)),
        int(max(box[1] - dy / 2, 0)),
        int(min(box[2] + dx / 2, width)),
        int(min(box[3] + dy / 2, height)),
    )


def _standardise(face: torch.Tensor) -> torch.Tensor:
    return (face - 127.5) / 128.0  # facenet-pytorch's fixed_image_standardization


def _bounded_rgb(image: Image.Image) -> np.ndarray:
    image = image.convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.array(image)  # a writable copy: torch.from_numpy warns on read-only arrays


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """fp16 autocast on CUDA when asked for; nothing elsewhere."""
    return torch.autocast("cuda") if amp and is_cuda(device) else contextlib.nullcontext()


def _import_facenet() -> Any:
    try:
        import facenet_pytorch
    except ImportError as e:
        raise LookalikeError(f"the facenet encoder needs facenet-pytorch: {_INSTALL_HINT}") from e
    return facenet_pytorch


def _create_mtcnn(device: torch.device) -> Any:
    return _import_facenet().MTCNN(image_size=FACE_SIZE, margin=MARGIN, device=device).eval()


def load_recogniser(weights: str) -> tuple[str, torch.nn.Module]:
    """InceptionResnetV1 with the named weights; returns (canonical label, eval-mode model on the CPU).

    Raises:
        EncoderSpecError: `weights` is neither a known tag, `none`, nor something that looks like a file.
        WeightsUnavailableError: the weights cannot be downloaded or read.
    """
    facenet_pytorch = _import_facenet()
    label, path = _resolve_weights(weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False)
    if path is not None:
        _load_state(model, path)
    return label, model.eval()


def _resolve_weights(weights: str) -> tuple[str, Path | None]:
    """(canonical label, local file or None for random init), downloading a known tag if needed."""
    tag = weights.lower().replace("_", "-")
    if tag == "none":
        return "none", None
    if tag in PRETRAINED:
        return tag, _cached_download(tag)
    path = Path(weights).expanduser()
    if path.is_file():
        return str(path.resolve()), path
    if path.suffix in (".pt", ".pth", ".bin") or os.sep in weights or "/" in weights:
        raise WeightsUnavailableError(f"facenet weights file {weights!r} does not exist")
    raise EncoderSpecError(
        f"unknown facenet weights {weights!r}; use vggface2, casia-webface, none, "
        "or a local file: facenet@/path/to/20180402-114759-vggface2.pt"
    )


def _load_state(model: torch.nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        # The released files include the training classifier ("logits.*"); embeddings do not use it.
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    except Exception as e:  # unpickling, I/O and key/shape mismatches all mean "not usable weights"
        raise WeightsUnavailableError(
            f"cannot load facenet weights {str(path)!r} ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "expected an InceptionResnetV1 state_dict such as 20180402-114759-vggface2.pt"
        ) from e


def _cached_download(tag: str) -> Path:
    """The released weights file in facenet-pytorch's cache ($TORCH_HOME/checkpoints), downloaded if absent."""
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home

    url = PRETRAINED[tag]
    cached = Path(get_torch_home()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            download_file(url, cached)
        except Exception as e:  # DNS, HTTP, TLS and disk errors all leave us without weights
            raise WeightsUnavailableError(
                f"cannot download facenet weights {tag!r} from {url} ({type(e).__name__}); offline? fetch "
                f"{cached.name} on a connected machine and pass facenet@/path/to/{cached.name}"
            ) from e
    return cached


def download_file(url: str, destination: Path) -> None:
    """Fetch `url` to `destination` atomically (torch.hub writes a temp file, then renames)."""
    torch.hub.download_url_to_file(url, str(destination), progress=False)
