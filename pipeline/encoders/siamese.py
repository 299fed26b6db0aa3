"""Models trained by `lookalike finetune`, loaded as encoders: spec `siamese@DIR` (DIR/config.json + model.safetensors).

The architectures live here rather than in `finetune` so that the pipeline loads a checkpoint without importing
training code. Two architectures:

- `head`: an MLP projection head on a frozen backbone encoder's vectors (`prepare` is the backbone's).
- `cnn`: a small ResNet trained from scratch on greyscale or RGB images (handwritten characters).

The networks are in `pipeline.encoders.siamese_nets` (with why a small ResNet rather than Koch et al.'s convnet), the
encoder built on a checkpoint in `pipeline.encoders.siamese_encoder`.

A checkpoint is plain data: safetensors weights (never unpickled) and a JSON config holding the sha256 of the weights
file; the weights file's metadata holds the sha256 of the config, so editing either file is refused on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from pipeline.encoders.siamese_nets import ProjectionHead, SiameseCNN, SiameseNet
from pipeline.errors import WeightsUnavailableError
from pipeline.images import ink_crop
from pipeline.records import Distance

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
Crop = Literal["none", "ink"]
CROPS: tuple[Crop, ...] = ("none", "ink")


@dataclass(frozen=True)
class SiameseConfig:
    """Everything needed to rebuild a trained model, and how it was trained.

    Attributes:
        architecture: "head" (MLP on a backbone's vectors) or "cnn" (images from scratch).
        embedding_dim: output vector size.
        distance: how the vectors are compared: cosine (contrastive, triplet) or manhattan (BCE: the learned
            |f1 − f2| weighting is folded into the output, so Manhattan distance is the trained logit).
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
            `pipeline.images.ink_crop`), applied alike in training and in the encoder.
        mean, std: cnn only: per-channel normalisation of [0, 1] pixels, measured on the training images.
        loss, metrics, training: provenance: the loss, the best validation metrics, the training settings.
    """

    architecture: Architecture
    embedding_dim: int
    distance: Distance = "cosine"
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
    crop: Crop = "none"
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
        """Rebuild from `to_dict` output. Raises ValueError on unknown keys or invalid values."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {', '.join(unknown)}")
        values = dict(data)
        for key in ("blocks", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _config_problem(c: SiameseConfig) -> str:
    """What is wrong with a config, or "" when it can build a model."""
    if c.format != FORMAT:
        return f"format {c.format!r} is not {FORMAT!r}"
    if c.embedding_dim < 1 or c.distance not in ("cosine", "manhattan"):
        return f"embedding_dim {c.embedding_dim} / distance {c.distance!r} invalid (need ≥ 1, cosine|manhattan)"
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
    return SiameseNet(body, config.embedding_dim)


def image_tensor(image: Image.Image, size: int, channels: int, crop: Crop = "none") -> torch.Tensor:
    """A decoded image as a (C, size, size) uint8 tensor: greyscale (C=1) or RGB, squashed to a square.

    crop "ink" first cuts the image to a square around its ink (`pipeline.images.ink_crop`).
    """
    mode = "L" if channels == 1 else "RGB"
    converted = image.convert(mode)
    if crop == "ink":
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


def canonical_config_hash(data: Mapping[str, Any]) -> str:
    """sha256 of a config dict as sorted compact JSON: what the weights file's metadata records."""
    text = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder: its config, its weights and the sha256 of the weights file (its identity)."""

    config: SiameseConfig
    state: dict[str, torch.Tensor]
    weights_sha256: str


def load_checkpoint(directory: Path) -> Checkpoint:
    """Read and verify a checkpoint folder without unpickling anything.

    Raises:
        WeightsUnavailableError: a file is missing or unreadable, the weights' sha256 differs from the config's,
            or the config differs from the one the weights were saved with (either file was edited).
    """
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise WeightsUnavailableError(f"{path} is missing: siamese@DIR needs a lookalike finetune output folder")
    try:
        data = json.loads(config_path.read_text())
        blob = weights_path.read_bytes()
    except (OSError, ValueError) as e:
        raise WeightsUnavailableError(f"cannot read checkpoint {directory}: {e}") from e
    recorded = data.pop("weights_sha256", None) if isinstance(data, dict) else None
    weights_sha256 = hashlib.sha256(blob).hexdigest()
    if recorded != weights_sha256:
        raise WeightsUnavailableError(
            f"{weights_path}: sha256 does not match {config_path} (weights modified or from another run); "
            "re-run lookalike finetune or restore the original files"
        )
    if _safetensors_metadata(blob).get(CONFIG_HASH_KEY) != canonical_config_hash(data):
        raise WeightsUnavailableError(
            f"{config_path}: edited after training (its hash differs from the one saved with the weights); "
            "restore it or re-run lookalike finetune"
        )
    try:
        return Checkpoint(SiameseConfig.from_dict(data), load_safetensors(blob), weights_sha256)
    except (ValueError, TypeError, SafetensorError) as e:
        raise WeightsUnavailableError(f"{config_path}: invalid checkpoint config: {e}") from e


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors header (8-byte little-endian length, then JSON); {} if unreadable."""
    try:
        header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
        return dict(header.get("__metadata__") or {})
    except (ValueError, AttributeError):
        return {}


def load_model(directory: Path, device: torch.device) -> tuple[SiameseConfig, SiameseNet]:
    """A verified checkpoint as a model in eval mode on `device`.

    Raises:
        WeightsUnavailableError: see `load_checkpoint`, or the weights do not fit the architecture.
    """
    checkpoint = load_checkpoint(directory)
    return checkpoint.config, checkpoint_model(checkpoint, directory, device)


def checkpoint_model(checkpoint: Checkpoint, directory: Path, device: torch.device) -> SiameseNet:
    """A loaded checkpoint's model in eval mode on `device`.

    Raises:
        WeightsUnavailableError: the weights do not fit the architecture (`directory` names it in the message).
    """
    model = build_model(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise WeightsUnavailableError(f"{directory}: weights do not fit the configured architecture ({first})") from e
    return model.to(device).eval()
