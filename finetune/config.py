"""`lookalike finetune` settings, built once at the CLI edge: mode, loss, optimisation, head and CNN options.

Plain data with no training dependency (pytorch-metric-learning, matplotlib), so the CLI can offer these choices
(`Mode`, `LossName`, `Mining`, `pipeline.encoders.siamese.model.Crop`) without the [train] extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Literal

from finetune.augment import COPY_AUGMENT, AugmentConfig
from finetune.errors import FinetuneConfigError
from pipeline.encoders.base import NoFacePolicy
from pipeline.encoders.siamese.model import CROPS, Crop, architecture_problem


class Mode(StrEnum):
    """What is trained: an MLP head on a frozen backbone's vectors, or a CNN from scratch."""

    HEAD = "head"
    CNN = "cnn"


class LossName(StrEnum):
    """The losses `finetune.losses` registers (`list_losses` describes each)."""

    CONTRASTIVE = "contrastive"
    TRIPLET = "triplet"
    BCE = "bce"
    SUPCON = "supcon"
    SUPCON_LOCAL = "supcon-local"


class Mining(StrEnum):
    """How the triplet loss picks its triplets (`finetune.losses.create_miner`)."""

    BATCH_HARD = "batch-hard"
    SEMIHARD = "semihard"
    ALL = "all"


# Losses that can train unnormalised embeddings (a free Euclidean space), with their default margins there, in raw
# Euclidean units: contrastive pushes different pairs 2.0 apart (the diameter of the unit sphere, the largest
# distance the normalised losses know); triplet wants d(a,n)² ≥ d(a,p)² + 1.0. Unbounded outputs make the scale
# the net's to choose, so the margin only sets the layout's units. The other losses are defined on unit vectors.
FREE_MARGINS: dict[LossName, float] = {LossName.CONTRASTIVE: 2.0, LossName.TRIPLET: 1.0}


def _expected(choices: type[StrEnum]) -> str:
    return " | ".join(choices)


@dataclass(frozen=True)
class LossConfig:
    """Which loss, its margin (None: the loss's default), for triplet how triplets are mined, and whether the model's
    output is L2-normalised (False: a free Euclidean space, contrastive and triplet only; the checkpoint records
    it and its encoder declares euclid distance)."""

    name: LossName = LossName.CONTRASTIVE
    margin: float | None = None
    mining: Mining = Mining.SEMIHARD
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.name not in tuple(LossName):
            raise FinetuneConfigError(f"loss {self.name!r}: expected {_expected(LossName)}", setting="loss")
        if self.mining not in tuple(Mining):
            raise FinetuneConfigError(f"triplet mining {self.mining!r}: expected {_expected(Mining)}", setting="mining")
        if self.margin is not None and self.margin <= 0:
            raise FinetuneConfigError(f"loss margin {self.margin}: must be positive", setting="margin")
        if not self.normalize and self.name not in FREE_MARGINS:
            raise FinetuneConfigError(
                f"loss {self.name} is defined on unit vectors, so it needs normalize on; unnormalised embeddings "
                f"(a free Euclidean space) train with loss {' or '.join(FREE_MARGINS)}",
                setting="normalize",
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: most epochs to run; `patience` epochs without a better validation metric stop earlier.
        min_delta: how much the validation metric must rise to count as better (guards against selecting an
            epoch on noise, e.g. one pair in a thousand).
        batch_size: examples per batch, `m_per_class` of each class (lowered to fit small data sets).
        steps_per_epoch: batches per epoch; None = one pass's worth (examples // batch_size).
        workers: DataLoader worker processes (0 = in the main process).
        amp: mixed precision on CUDA (ignored on CPU).
    """

    epochs: int = 30
    batch_size: int = 128
    m_per_class: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    min_delta: float = 0.0
    seed: int = 0
    steps_per_epoch: int | None = None
    workers: int = 0
    amp: bool = True
    progress: bool = True


@dataclass(frozen=True)
class HeadOptions:
    """Head mode: the frozen backbone, the MLP's size, and where the backbone's vectors are cached.

    Attributes:
        embedding_dim: output size; None = the backbone's (the head then starts as the identity).
        collection: Qdrant collection caching the backbone's vectors; None = `<dataset>-<backbone>`, the name
            `lookalike eval` gives it, so vectors an evaluation stored are reused.
    """

    backbone: str = "dlib"
    hidden_dim: int = 512
    embedding_dim: int | None = None
    dropout: float = 0.1
    collection: str | None = None
    no_face: NoFacePolicy = "skip"
    workers: int = 2
    report_dir: Path = Path(".lookalike/reports")


@dataclass(frozen=True)
class CnnOptions:
    """CNN mode: input preprocessing, the ResNet's size, class rotation and augmentation.

    Attributes:
        channels: 1 (greyscale) or 3 (RGB); None = the data kind's: 3 for copies, 1 otherwise.
        augment: batch augmentation; "auto" = the data kind's (copies: COPY_AUGMENT, flip + light affine;
            otherwise AugmentConfig(), affine + elastic); None = off.
        copies_per_image: copies data: transformed copies made of each training image (K; 1 + K views a class).
        pool_grid: the last feature map is pooled to pool_grid × pool_grid and flattened (1 = global average).
        synthetic_classes: invented pen-stroke characters (`finetune.strokes`, 20 drawings each) added as extra
            training classes; for handwritten characters with few real classes. Not for copies data.
        crop: "ink" cuts each image to a square around its ink before resizing (`pipeline.core.images.ink_crop`; the
            checkpoint records it, so the encoder does the same); "none" resizes the whole image.
    """

    input_size: int = 28
    channels: int | None = None
    width: int = 32
    blocks: tuple[int, ...] = (1, 1, 1)
    embedding_dim: int = 128
    rotate_classes: bool = False  # each 90° rotation of a class is a new class (few-shot Omniglot practice)
    augment: AugmentConfig | Literal["auto"] | None = "auto"
    decode_threads: int = 4
    copies_per_image: int = 10
    pool_grid: int = 1
    synthetic_classes: int = 0
    crop: Crop = Crop.NONE

    def __post_init__(self) -> None:
        if self.channels not in (None, 1, 3):
            raise FinetuneConfigError(
                f"channels {self.channels}: expected 1 (greyscale) or 3 (RGB)", setting="channels"
            )
        if self.copies_per_image < 1:
            raise FinetuneConfigError(
                f"copies per image {self.copies_per_image}: expected 1 or more", setting="copies_per_image"
            )
        if self.pool_grid < 1:
            raise FinetuneConfigError(f"pooling grid {self.pool_grid}: expected 1 or more", setting="pool_grid")
        if self.synthetic_classes < 0:
            raise FinetuneConfigError(
                f"synthetic classes {self.synthetic_classes}: expected 0 or more", setting="synthetic_classes"
            )
        if self.crop not in CROPS:
            raise FinetuneConfigError(f"crop {self.crop}: expected one of {', '.join(CROPS)}", setting="crop")
        if self.crop != Crop.NONE and self.synthetic_classes:
            raise FinetuneConfigError(
                "crop ink with synthetic classes: drawn characters are not cropped; use crop none", setting="crop"
            )
        sizes = {"input_size": self.input_size, "width": self.width, "blocks": self.blocks, "pool_grid": self.pool_grid}
        if problem := architecture_problem({"architecture": "cnn", "embedding_dim": self.embedding_dim, **sizes}):
            raise FinetuneConfigError(f"{problem}: such a model could not be loaded (siamese@DIR refuses it)")

    def image_channels(self, kind: str) -> int:
        """The channels for data of this kind."""
        return self.channels or (3 if kind == "copies" else 1)

    def augment_config(self, kind: str) -> AugmentConfig | None:
        """The augmentation for data of this kind."""
        if self.augment != "auto":
            return self.augment
        return COPY_AUGMENT if kind == "copies" else AugmentConfig()

    def for_kind(self, kind: str) -> CnnOptions:
        """These options with the data kind's defaults filled in (what the checkpoint records)."""
        return replace(self, channels=self.image_channels(kind), augment=self.augment_config(kind))


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything `run_finetune` needs, built once at the CLI edge."""

    data: str
    out: Path
    mode: Mode = Mode.CNN
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    head: HeadOptions = field(default_factory=HeadOptions)
    cnn: CnnOptions = field(default_factory=CnnOptions)
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.mode not in tuple(Mode):
            raise FinetuneConfigError(f"mode {self.mode!r}: expected {_expected(Mode)}", setting="mode")
        if self.mode == Mode.HEAD and self.data.strip().startswith("copies:"):
            raise FinetuneConfigError(
                "copies: data makes its training images in memory, which head mode cannot embed and cache "
                "through the vector store; use mode cnn",
                setting="mode",
            )
        if self.loss.name == LossName.SUPCON_LOCAL and (self.mode == Mode.HEAD or self.cnn.pool_grid != 1):
            raise FinetuneConfigError(
                "loss supcon-local matches the cells of a CNN's last feature map; it needs mode cnn and a pooling "
                "grid of 1",
                setting="loss",
            )
        if self.cnn.synthetic_classes and (self.mode == Mode.HEAD or self.data.strip().startswith("copies:")):
            raise FinetuneConfigError(
                "synthetic classes add drawn characters to a CNN's training images; they need mode cnn and "
                "labelled data (omniglot:, folder:, manifest:)",
                setting="synthetic_classes",
            )
        if self.cnn.crop != Crop.NONE and (self.mode == Mode.HEAD or self.data.strip().startswith("copies:")):
            raise FinetuneConfigError(
                "crop ink cuts drawings on a plain ground to their ink; it needs mode cnn and labelled data "
                "(omniglot:, folder:, manifest:)",
                setting="crop",
            )


def parse_blocks(text: str) -> tuple[int, ...]:
    """`"1,1,1"` → (1, 1, 1): residual blocks per CNN stage.

    Raises:
        FinetuneConfigError: not a comma-separated list of positive integers.
    """
    try:
        blocks = tuple(int(part) for part in text.split(","))
    except ValueError:
        blocks = ()
    if not blocks or min(blocks) < 1:
        raise FinetuneConfigError(
            f"blocks per stage {text!r}: expected positive integers separated by commas, e.g. 1,1,1", setting="blocks"
        )
    return blocks
