"""`lookalike finetune` as one library call: data spec → examples → inputs → model + loss → train → checkpoint."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from finetune.augment import AugmentConfig, CharacterAugment
from finetune.checkpoint import CURVES_FILE, write_checkpoint, write_curves
from finetune.data import DataSpec, TrainingData, load_training_data
from finetune.errors import FinetuneConfigError
from finetune.inputs import backbone_vectors, channel_stats, decode_images
from finetune.losses import LossConfig, create_loss
from finetune.train import BatchTransform, TrainConfig, TrainData, TrainResult, seed_everything, train
from pipeline.encoders.base import Encoder, EncoderOptions, NoFacePolicy, vector_name
from pipeline.encoders.registry import create_encoder
from pipeline.encoders.siamese import SiameseConfig, build_model, normalise_images
from pipeline.errors import LookalikeError
from pipeline.protocols.common import EvalSetup
from pipeline.store import VectorStore

Mode = Literal["head", "cnn"]
HISTORY_FILE = "history.json"


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
    """CNN mode: input preprocessing, the ResNet's size, class rotation and augmentation (None = off)."""

    input_size: int = 28
    channels: int = 1
    width: int = 32
    blocks: tuple[int, ...] = (1, 1, 1)
    embedding_dim: int = 128
    rotate_classes: bool = False  # each 90° rotation of a class is a new class (few-shot Omniglot practice)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    decode_threads: int = 4


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything `run_finetune` needs, built once at the CLI edge."""

    data: str
    out: Path
    mode: Mode = "cnn"
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    head: HeadOptions = field(default_factory=HeadOptions)
    cnn: CnnOptions = field(default_factory=CnnOptions)
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.mode not in ("head", "cnn"):
            raise FinetuneConfigError(f"--mode {self.mode!r}: expected head | cnn")


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
        raise FinetuneConfigError(f"--blocks {text!r}: expected positive integers separated by commas, e.g. 1,1,1")
    return blocks


@dataclass(frozen=True)
class FinetuneResult:
    """What the CLI prints: the checkpoint folder, the validation metric before and after, counts, time."""

    out: Path
    encoder_spec: str
    metric_name: str
    best_metric: float
    baseline_metric: float
    best_epoch: int
    epochs_run: int
    train_examples: int
    train_classes: int
    seconds: float


def run_finetune(
    config: FinetuneConfig, device: torch.device, store: VectorStore | None = None, backbone: Encoder | None = None
) -> FinetuneResult:
    """Train a Siamese head or CNN and write `config.out` (model.safetensors, config.json, curves.png, history.json).

    Args:
        store: head mode: the store caching backbone vectors (required there).
        backbone: head mode: an encoder to use instead of building `config.head.backbone` (tests inject one).

    Raises:
        LookalikeError: a bad data spec or source, a missing store in head mode, unusable backbone weights.
    """
    start = time.perf_counter()
    seed_everything(config.train.seed)  # before the model is built: its initial weights are part of the run
    data = load_training_data(DataSpec.parse(config.data), config.train.seed, config.val_fraction)
    if config.mode == "head":
        prepared, model_config = _head_inputs(config, data, device, store, backbone)
    else:
        prepared, model_config = _cnn_inputs(config, data)
    loss = create_loss(config.loss, model_config.embedding_dim)
    model = build_model(model_config, config.head.dropout if config.mode == "head" else 0.0)
    result = train(config.train, model, loss, prepared, device)
    seconds = time.perf_counter() - start
    final = _final_config(config, replace(model_config, distance=loss.distance), result, len(prepared.labels), seconds)
    _write_outputs(config.out, final, result)
    return FinetuneResult(
        out=config.out,
        encoder_spec=f"siamese@{config.out.resolve()}",
        metric_name=result.metric_name,
        best_metric=result.best_metric,
        baseline_metric=result.baseline_metric,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history) - 1,
        train_examples=len(prepared.labels),
        train_classes=len(torch.unique(prepared.labels)),
        seconds=seconds,
    )


def _final_config(
    config: FinetuneConfig, model_config: SiameseConfig, result: TrainResult, examples: int, seconds: float
) -> SiameseConfig:
    """The model's config plus provenance: loss, best and before-training metrics, training settings."""
    settings = {
        "data": config.data,
        "mode": config.mode,
        "loss": asdict(config.loss),
        "train": asdict(config.train),
        "options": asdict(config.head) if config.mode == "head" else asdict(config.cnn),
        "val_fraction": config.val_fraction,
        "train_examples": examples,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history) - 1,
        "seconds": round(seconds, 1),
    }
    metrics = {result.metric_name: result.best_metric, f"{result.metric_name}_before_training": result.baseline_metric}
    return replace(model_config, loss=config.loss.name, metrics=metrics, training=settings)


def _write_outputs(out: Path, final: SiameseConfig, result: TrainResult) -> None:
    """model.safetensors + config.json (the checkpoint), curves.png, history.json (loss null for epoch 0)."""
    write_checkpoint(out, final, result.state)
    write_curves(result.history, result.metric_name, out / CURVES_FILE, result.best_epoch)
    rows = [{**asdict(r), "loss": None if math.isnan(r.loss) else r.loss} for r in result.history]
    (out / HISTORY_FILE).write_text(json.dumps(rows, indent=2) + "\n")


def class_ids(labels: tuple[str, ...], ok: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """Rows to train on (ok, and in a class that still has two such rows) and their int64 class ids."""
    kept = [i for i in range(len(labels)) if ok[i]]
    counts: dict[str, int] = {}
    for i in kept:
        counts[labels[i]] = counts.get(labels[i], 0) + 1
    rows = np.array([i for i in kept if counts[labels[i]] > 1], dtype=np.int64)
    names = {name: k for k, name in enumerate(sorted({labels[i] for i in rows}))}
    return rows, torch.tensor([names[labels[i]] for i in rows], dtype=torch.int64)


def _head_inputs(
    config: FinetuneConfig,
    data: TrainingData,
    device: torch.device,
    store: VectorStore | None,
    backbone: Encoder | None,
) -> tuple[TrainData, SiameseConfig]:
    """Backbone vectors via the production ingest path (cached in Qdrant), then the head's config."""
    opts = config.head
    if store is None:
        raise LookalikeError("head mode caches backbone vectors in a vector store; none was given")
    encoder = backbone or create_encoder(opts.backbone, device, EncoderOptions(no_face=opts.no_face))
    collection = opts.collection or f"{data.spec.dataset_name}-{vector_name(encoder.name)}"
    setup = EvalSetup(
        store,
        collection,
        encoder,
        device,
        workers=opts.workers,
        progress=config.train.progress,
        report_dir=opts.report_dir,
        retry_missing=opts.no_face == "center",
    )
    bank = backbone_vectors(data.all_paths, setup)
    inputs, ok = bank.rows(data.train.paths)
    rows, labels = class_ids(data.train.labels, ok)
    val_inputs, val_ok = bank.rows(data.validation.paths)
    prepared = TrainData(inputs[torch.from_numpy(rows)], labels, val_inputs, val_ok, data.validation)
    model_config = SiameseConfig(
        "head",
        embedding_dim=opts.embedding_dim or encoder.dim,
        backbone=encoder.name,
        input_dim=encoder.dim,
        hidden_dim=opts.hidden_dim,
    )
    return prepared, model_config


def _cnn_inputs(config: FinetuneConfig, data: TrainingData) -> tuple[TrainData, SiameseConfig]:
    """Decoded images (optionally ×4 rotated classes), normalisation measured on them, and the CNN's config."""
    opts = config.cnn
    bank = decode_images(data.all_paths, opts.input_size, opts.channels, opts.decode_threads, config.train.progress)
    images, ok = bank.rows(data.train.paths)
    rows, labels = class_ids(data.train.labels, ok)
    images = images[torch.from_numpy(rows)]  # (N, C, S, S) uint8
    if opts.rotate_classes:
        images = torch.cat([torch.rot90(images, turn, dims=(2, 3)) for turn in range(4)])
        labels = torch.cat([labels * 4 + turn for turn in range(4)])
    mean, std = channel_stats(images)
    augment = CharacterAugment(opts.augment, opts.input_size) if opts.augment is not None else None
    val_images, val_ok = bank.rows(data.validation.paths)
    prepared = TrainData(
        images,
        labels,
        val_images,
        val_ok,
        data.validation,
        transform=_image_transform(mean, std, augment),
        eval_transform=_image_transform(mean, std, None),
    )
    model_config = SiameseConfig(
        "cnn",
        embedding_dim=opts.embedding_dim,
        input_size=opts.input_size,
        channels=opts.channels,
        width=opts.width,
        blocks=opts.blocks,
        mean=mean,
        std=std,
    )
    return prepared, model_config


def _image_transform(
    mean: tuple[float, ...], std: tuple[float, ...], augment: CharacterAugment | None
) -> BatchTransform:
    """uint8 batch → [0, 1] → augmented (training) → normalised, on the batch's device."""

    def apply(batch: torch.Tensor) -> torch.Tensor:
        pixels = batch.float() / 255.0
        if augment is not None:
            pixels = augment.to(batch.device)(pixels)
        return normalise_images(pixels, mean, std)

    return apply
