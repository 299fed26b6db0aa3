"""Models trained by `lookalike finetune`, loaded as encoders: spec `siamese@DIR` (DIR/config.json + model.safetensors).

The architectures live here rather than in `finetune` so that the pipeline loads a checkpoint without importing
training code. Two architectures:

- `head`: an MLP projection head on a frozen backbone encoder's vectors (`prepare` is the backbone's).
- `cnn`: a small ResNet trained from scratch on greyscale or RGB images (handwritten characters).

The networks are in `pipeline.encoders.siamese.nets` (with why a small ResNet rather than Koch et al.'s convnet), the
encoder built on a checkpoint in `pipeline.encoders.siamese.encoder`.

A checkpoint is plain data: safetensors weights (never unpickled) and a JSON config holding the sha256 of the weights
file; the weights file's metadata holds the sha256 of the config, so editing either file is refused on load. Those
hashes stop accidents, not forgers (anyone can recompute both), so loading also trusts nothing in the files: the config
is checked for types and `CONFIG_RANGES`, and the tensor names, dtypes and shapes in the weights file's header are
compared with a model built on the meta device, before anything is allocated. `pipeline.encoders.siamese.checkpoint`
writes and reads checkpoints; the file names and format version below are its constants.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from pipeline.core.images import ink_crop
from pipeline.core.records import Distance
from pipeline.encoders.siamese.nets import ProjectionHead, SiameseCNN, SiameseNet

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "lookalike-siamese/1"
CONFIG_HASH_KEY = "config_sha256"  # safetensors metadata key
# Bump when the same checkpoint would embed an image differently (resizing, normalisation, forward pass). Retrained
# weights need no bump: the version carries the weights' sha256 (which covers the config, whose hash the weights'
# metadata holds) and, for a head, the backbone's version.
VERSION = "siamese:1"
LOCAL_VERSION = "siamese-local:1"  # the `siamese:local@DIR` multivector layout (see `local_multivectors`)
Architecture = Literal["head", "cnn"]


class Crop(StrEnum):
    """How a CNN's input image is framed before resizing: whole ("none"), or cut to a square around its ink."""

    NONE = "none"
    INK = "ink"


CROPS: tuple[Crop, ...] = tuple(Crop)


@dataclass(frozen=True)
class SiameseConfig:
    """Everything needed to rebuild a trained model, and how it was trained.

    Attributes:
        architecture: "head" (MLP on a backbone's vectors) or "cnn" (images from scratch).
        embedding_dim: output vector size.
        distance: how the vectors are compared: cosine (contrastive, triplet) or manhattan (BCE: the learned
            |f1 − f2| weighting is folded into the output, so Manhattan distance is the trained logit); euclid for
            an unnormalised model (`normalize` False).
        normalize: the output is L2-normalised (True, every model before this field existed); False = a free
            Euclidean space (contrastive or triplet on raw vectors; distance euclid).
        backbone: head only: the backbone encoder's spec string.
        backbone_version: head only: that encoder's version when the head was trained ("" in checkpoints made before
            it was recorded: then any version is accepted).
        input_dim, hidden_dim: head only: backbone vector size and hidden width.
        input_size, channels, width, blocks: cnn only: square input side, 1 (grey) or 3 (RGB) channels, stem
            width and residual blocks per stage (each stage halves the resolution and doubles the width).
        pool_grid: cnn only: the last feature map is average-pooled to a pool_grid × pool_grid grid and flattened
            (1 = global average pooling; 2–4 keep where strokes are, which characters need).
        local_weight: cnn only: how `siamese:local@DIR` weighs the mean best cell cosine against the global cosine
            (1 for cosine-trained models; supcon-local models record what was chosen for them).
        crop: cnn only: "none" (the whole image is resized) or "ink" (first cut to a square around the ink:
            `pipeline.core.images.ink_crop`), applied alike in training and in the encoder.
        mean, std: cnn only: per-channel normalisation of [0, 1] pixels, measured on the training images.
        loss, metrics, training: provenance: the loss, the best validation metrics, the training settings.
    """

    architecture: Architecture
    embedding_dim: int
    distance: Distance = "cosine"
    normalize: bool = True
    backbone: str | None = None
    backbone_version: str = ""
    input_dim: int = 0
    hidden_dim: int = 0
    input_size: int = 0
    channels: int = 1
    width: int = 32
    blocks: tuple[int, ...] = (1, 1, 1)
    pool_grid: int = 1
    local_weight: float = 1.0
    crop: Crop = Crop.NONE
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    loss: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def __post_init__(self) -> None:
        problem = _config_problem(self)
        if problem:
            raise ValueError(f"SiameseConfig: {problem}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tuples become lists, values JSON cannot hold (paths) become strings."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SiameseConfig:
        """Rebuild from `to_dict` output, as read from a checkpoint: every value's JSON type and range is checked
        before anything is sized by it.

        Raises:
            ValueError: unknown or missing keys, a value of the wrong type, out of `CONFIG_RANGES`, or invalid.
        """
        problem = _keys_problem(data) or _types_problem(data) or _ranges_problem({**_DEFAULTS, **data})
        if problem:
            raise ValueError(problem)
        values = dict(data)
        for key in ("blocks", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        if values.get("crop") in CROPS:  # JSON holds the value; an unknown one is refused by __post_init__
            values["crop"] = Crop(values["crop"])
        return cls(**values)


_DEFAULTS = {f.name: f.default for f in fields(SiameseConfig) if f.default is not MISSING}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


# What each config value must be in JSON (booleans are not integers; NaN and infinities are not finite numbers).
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "an integer": _is_int,
    "a finite number": _is_number,
    "a string": lambda value: isinstance(value, str),
    "a string or null": lambda value: value is None or isinstance(value, str),
    "a list of integers": lambda value: isinstance(value, list) and all(map(_is_int, value)),
    "a list of finite numbers": lambda value: isinstance(value, list) and all(map(_is_number, value)),
    "an object": lambda value: isinstance(value, dict),
    "a boolean": lambda value: isinstance(value, bool),
}
_KINDS = {
    **dict.fromkeys(("embedding_dim", "input_dim", "hidden_dim", "input_size", "channels", "width"), "an integer"),
    **dict.fromkeys(("architecture", "distance", "backbone_version", "crop", "loss", "format"), "a string"),
    **dict.fromkeys(("mean", "std"), "a list of finite numbers"),
    **dict.fromkeys(("metrics", "training"), "an object"),
    "pool_grid": "an integer",
    "backbone": "a string or null",
    "local_weight": "a finite number",
    "blocks": "a list of integers",
    "normalize": "a boolean",
}
# Load-time bounds, generous for what `lookalike finetune` trains (28–64 px, width 24–32, 3–4 stages, heads on
# 128–1280-d backbones) and small enough that a forged config sizes nothing big: (low, high) per value, per item of
# a list, or on the list's length (`blocks_stages`, the number of CNN stages).
CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "embedding_dim": (1, 4096),
    "input_dim": (1, 8192),
    "hidden_dim": (1, 8192),
    "input_size": (8, 512),
    "width": (1, 256),
    "blocks": (1, 16),
    "blocks_stages": (1, 6),
    "pool_grid": (1, 16),
    "local_weight": (1e-6, 100.0),
    "mean": (0.0, 1.0),
    "std": (1e-6, 1.0),
}
_RANGED = {
    "head": ("embedding_dim", "input_dim", "hidden_dim"),
    "cnn": ("embedding_dim", "input_size", "width", "blocks", "pool_grid", "local_weight", "mean", "std"),
}
MAX_FEATURE_MAP = 2**24  # cnn: width × input_size², the stem's activations per image (64 MB as float32)
MAX_BACKBONE_CHARS = 4096
_UNITS = {"blocks": " per stage", "mean": " per channel", "std": " per channel"}


def _keys_problem(data: Mapping[str, Any]) -> str:
    unknown = sorted(str(key)[:60] for key in set(data) - set(_KINDS))
    if unknown:
        return f"unknown key(s) {', '.join(unknown[:5])}"
    missing = [key for key in ("architecture", "embedding_dim") if key not in data]
    return f"missing key(s) {', '.join(missing)}" if missing else ""


def _types_problem(data: Mapping[str, Any]) -> str:
    for key, value in data.items():
        if not _CHECKS[_KINDS[key]](value):
            return f"{key} = {brief(value)} is not {_KINDS[key]}"
    return ""


def architecture_problem(values: Mapping[str, Any]) -> str:
    """Why a checkpoint with these config values (the rest default) would be refused on load, or "": for training,
    to refuse before any work what could never be loaded."""
    return _ranges_problem({**_DEFAULTS, **values})


def _ranges_problem(values: Mapping[str, Any]) -> str:
    """The first value out of `CONFIG_RANGES` for its architecture, or ""."""
    for key in _RANGED.get(values["architecture"], ()):
        low, high = CONFIG_RANGES[key]
        items = values[key] if isinstance(values[key], (list, tuple)) else [values[key]]
        if not all(low <= item <= high for item in items):
            return f"{key} = {brief(values[key])} is out of range (allowed {low:g} to {high:g}{_UNITS.get(key, '')})"
    if values["architecture"] == "cnn":
        low, high = CONFIG_RANGES["blocks_stages"]
        if not low <= len(values["blocks"]) <= high:
            return f"blocks = {brief(values['blocks'])}: {len(values['blocks'])} stages (allowed {low:g} to {high:g})"
        if values["width"] * values["input_size"] ** 2 > MAX_FEATURE_MAP:
            return f"width × input_size² = {values['width']} × {values['input_size']}² is over {MAX_FEATURE_MAP}"
    if len(values.get("backbone") or "") > MAX_BACKBONE_CHARS:
        return f"backbone is {len(values['backbone'])} characters long (allowed up to {MAX_BACKBONE_CHARS})"
    return ""


def brief(value: Any) -> str:
    """A value for a one-line message: its repr, cut to 60 characters."""
    try:
        text = repr(value)
    except RecursionError:  # JSON nested nearly as deep as the parser allows
        text = f"<a deeply nested {type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _config_problem(c: SiameseConfig) -> str:
    """What is wrong with a config, or "" when it can build a model."""
    if c.format != FORMAT:
        return f"format {c.format!r} is not {FORMAT!r}"
    if c.embedding_dim < 1 or c.distance not in ("cosine", "manhattan", "euclid"):
        return f"embedding_dim {c.embedding_dim} / distance {c.distance!r} invalid (need ≥ 1, cosine|manhattan|euclid)"
    if (c.distance == "euclid") == c.normalize:
        return f"distance {c.distance!r} with normalize {c.normalize}: euclid is for unnormalised models, and always"
    if c.architecture == "head":
        ok = bool(c.backbone) and c.input_dim > 0 and c.hidden_dim > 0
        return "" if ok else "head needs backbone, input_dim > 0 and hidden_dim > 0"
    if c.architecture == "cnn":
        sizes_ok = c.input_size >= 8 and c.width >= 1 and bool(c.blocks) and min(c.blocks) >= 1 and c.pool_grid >= 1
        sizes_ok = sizes_ok and c.local_weight > 0
        if not sizes_ok or c.channels not in (1, 3):
            return (
                "cnn needs input_size ≥ 8, channels 1 or 3, width ≥ 1, ≥ 1 block per stage, pool_grid ≥ 1 and "
                "local_weight > 0"
            )
        if c.crop not in CROPS:
            return f"crop {c.crop!r} is not one of {', '.join(CROPS)}"
        if len(c.mean) != c.channels or len(c.std) != c.channels or min(c.std) <= 0:
            return f"cnn needs {c.channels} mean and {c.channels} positive std values"
        return ""
    return f"unknown architecture {c.architecture!r} (head | cnn)"


def build_model(config: SiameseConfig, dropout: float = 0.0) -> SiameseNet:
    """A freshly initialised model for a config (weights are loaded separately)."""
    body: nn.Module
    if config.architecture == "head":
        body = ProjectionHead(config.input_dim, config.hidden_dim, config.embedding_dim, dropout)
    else:
        body = SiameseCNN(config.channels, config.width, config.blocks, config.embedding_dim, config.pool_grid)
    return SiameseNet(body, config.embedding_dim, config.normalize)


def image_tensor(image: Image.Image, size: int, channels: int, crop: Crop = Crop.NONE) -> torch.Tensor:
    """A decoded image as a (C, size, size) uint8 tensor: greyscale (C=1) or RGB, squashed to a square.

    crop "ink" first cuts the image to a square around its ink (`pipeline.core.images.ink_crop`).
    """
    mode = "L" if channels == 1 else "RGB"
    converted = image.convert(mode)
    if crop == Crop.INK:
        converted = ink_crop(converted)
    resized = converted.resize((size, size), Image.Resampling.BILINEAR)  # antialiased when shrinking
    array = np.asarray(resized, dtype=np.uint8).reshape(size, size, channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def normalise_images(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, C, H, W) uint8 pixels, or floats already in [0, 1] → per-channel (x − mean) / std as float32."""
    pixels = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (pixels - m) / s
