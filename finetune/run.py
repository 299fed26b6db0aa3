"""`lookalike finetune` as one library call: data spec → examples → inputs → model + loss → train → checkpoint."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from finetune.augment import CharacterAugment
from finetune.config import CnnOptions, FinetuneConfig, HeadOptions, Mode, TrainConfig, parse_blocks
from finetune.copies import CopySettings, make_copy_set
from finetune.curves import CURVES_FILE, write_curves
from finetune.data import DataSpec, TrainingData, load_training_data
from finetune.inputs import backbone_vectors, channel_stats, decode_images
from finetune.losses import LOCAL_LOSS_WEIGHT, create_loss
from finetune.strokes import StrokeSettings, synthetic_characters
from finetune.train import BatchTransform, TrainData, TrainResult, seed_everything, train
from finetune.validation import Validation
from pipeline.core.conventions import default_collection, retries_missing
from pipeline.core.errors import LookalikeError
from pipeline.encoders.base import Encoder, EncoderOptions, encoder_version
from pipeline.encoders.registry import create_encoder
from pipeline.encoders.siamese.checkpoint import write_checkpoint
from pipeline.encoders.siamese.model import SiameseConfig, build_model, normalise_images
from pipeline.index.collection import IndexedCollection
from pipeline.store import VectorStore

# The settings live in finetune.config; they stay importable from here, where callers first found them.
__all__ = ["CnnOptions", "FinetuneConfig", "FinetuneResult", "HeadOptions", "Mode", "parse_blocks", "run_finetune"]

HISTORY_FILE = "history.json"


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
    undecodable: int = 0


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
    config = replace(config, cnn=config.cnn.for_kind(data.spec.kind))
    undecodable = 0
    if config.mode == Mode.HEAD:
        prepared, model_config = _head_inputs(config, data, device, store, backbone)
    elif data.spec.kind == "copies":
        prepared, model_config, undecodable = _copies_inputs(config, data)
    else:
        prepared, model_config = _cnn_inputs(config, data)
    loss = create_loss(config.loss, model_config.embedding_dim)
    model_config = replace(model_config, distance=loss.distance, normalize=config.loss.normalize)
    model = build_model(model_config, config.head.dropout if config.mode == Mode.HEAD else 0.0)
    result = train(config.train, model, loss, prepared, device)
    seconds = time.perf_counter() - start
    local_weight = LOCAL_LOSS_WEIGHT if loss.needs_cells else 1.0  # how siamese:local@DIR will weigh the cells
    trained = replace(model_config, local_weight=local_weight)
    final = final_config(config, trained, result, len(prepared.labels), seconds)
    write_outputs(config.out, final, result)
    return FinetuneResult(
        out=config.out,
        encoder_spec=f"{'siamese:local' if loss.needs_cells else 'siamese'}@{config.out.resolve()}",
        metric_name=result.metric_name,
        best_metric=result.best_metric,
        baseline_metric=result.baseline_metric,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history) - 1,
        train_examples=len(prepared.labels),
        train_classes=len(torch.unique(prepared.labels)),
        seconds=seconds,
        undecodable=undecodable,
    )


def final_config(
    config: FinetuneConfig, model_config: SiameseConfig, result: TrainResult, examples: int, seconds: float
) -> SiameseConfig:
    """The model's config plus provenance: loss, best and before-training metrics (none without validation),
    training settings."""
    settings = {
        "data": config.data,
        "mode": config.mode,
        "loss": asdict(config.loss),
        "train": asdict(config.train),
        "options": asdict(config.head) if config.mode == Mode.HEAD else asdict(config.cnn),
        "val_fraction": config.val_fraction,
        "train_examples": examples,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history) - 1,
        "seconds": round(seconds, 1),
    }
    metrics = {result.metric_name: result.best_metric, f"{result.metric_name}_before_training": result.baseline_metric}
    if math.isnan(result.best_metric):  # nothing held out (--val-fraction 0): no metric to record
        metrics = {}
    return replace(model_config, loss=config.loss.name, metrics=metrics, training=settings)


def write_outputs(out: Path, final: SiameseConfig, result: TrainResult) -> None:
    """model.safetensors + config.json (the checkpoint), curves.png, history.json (loss null for epoch 0; metric
    null without validation)."""
    write_checkpoint(out, final, result.state)
    write_curves(result.history, result.metric_name, out / CURVES_FILE, result.best_epoch)
    rows = [
        {
            **asdict(r),
            "loss": None if math.isnan(r.loss) else r.loss,
            "metric": None if math.isnan(r.metric) else r.metric,
        }
        for r in result.history
    ]
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
    collection = opts.collection or default_collection(data.spec.dataset_name, [encoder.name])
    index = IndexedCollection(
        store,
        collection,
        (encoder,),
        device,
        workers=opts.workers,
        progress=config.train.progress,
        report_dir=opts.report_dir,
        retry_missing=retries_missing(opts.no_face),
    )
    bank = backbone_vectors(data.all_paths, index)
    inputs, ok = bank.rows(data.train.paths)
    rows, labels = class_ids(data.train.labels, ok)
    val_inputs, val_ok = bank.rows(data.validation.paths)
    prepared = TrainData(inputs[torch.from_numpy(rows)], labels, val_inputs, val_ok, data.validation)
    model_config = SiameseConfig(
        "head",
        embedding_dim=opts.embedding_dim or encoder.dim,
        backbone=encoder.name,
        backbone_version=encoder_version(encoder),
        input_dim=encoder.dim,
        hidden_dim=opts.hidden_dim,
    )
    return prepared, model_config


def _cnn_inputs(config: FinetuneConfig, data: TrainingData) -> tuple[TrainData, SiameseConfig]:
    """Decoded images (optionally ×4 rotated classes), normalisation measured on them, drawn characters added if
    asked, and the CNN's config."""
    opts, kind = config.cnn, data.spec.kind
    channels = opts.image_channels(kind)
    bank = decode_images(
        data.all_paths, opts.input_size, channels, opts.decode_threads, config.train.progress, opts.crop
    )
    images, ok = bank.rows(data.train.paths)
    rows, labels = class_ids(data.train.labels, ok)
    images, labels = _rotated(opts, images[torch.from_numpy(rows)], labels)  # (N, C, S, S) uint8
    mean, std = channel_stats(images)  # of the real images: those are what the encoder will see
    images, labels = _with_synthetic(opts, channels, (images, labels), config.train)
    val_images, val_ok = bank.rows(data.validation.paths)
    return image_inputs(opts, kind, (images, labels, val_images, val_ok), data.validation, (mean, std))


def _copies_inputs(config: FinetuneConfig, data: TrainingData) -> tuple[TrainData, SiameseConfig, int]:
    """Each training image and its copies as a class (`finetune.copies`); also how many images did not decode."""
    opts, kind, train = config.cnn, data.spec.kind, config.train
    settings = CopySettings(
        opts.input_size,
        opts.image_channels(kind),
        opts.copies_per_image,
        train.seed,
        opts.decode_threads,
        train.progress,
    )
    views = make_copy_set(data, settings)
    images, labels = _rotated(opts, views.images, views.labels)
    mean, std = channel_stats(images[:: max(1, len(images) // 8192)])  # a sample: a float copy of all is 4× the bank
    val_ok = np.ones(len(views.val_images), dtype=bool)
    batches = (images, labels, views.val_images, val_ok)
    prepared, model_config = image_inputs(opts, kind, batches, views.validation, (mean, std))
    return prepared, model_config, len(views.undecodable)


def _rotated(opts: CnnOptions, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """With rotate_classes, each 90° rotation of a class becomes a class of its own."""
    if not opts.rotate_classes:
        return images, labels
    return torch.cat([torch.rot90(images, t, dims=(2, 3)) for t in range(4)]), torch.cat(
        [labels * 4 + t for t in range(4)]
    )


def _with_synthetic(
    opts: CnnOptions, channels: int, real: tuple[torch.Tensor, torch.Tensor], train: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The real images and labels, then `opts.synthetic_classes` drawn characters as classes after the real ones."""
    images, labels = real
    if not opts.synthetic_classes:
        return images, labels
    settings = StrokeSettings(opts.synthetic_classes, size=opts.input_size, seed=train.seed)
    drawn, drawn_labels = synthetic_characters(settings, train.progress)
    first = int(labels.max()) + 1 if len(labels) else 0
    return torch.cat([images, drawn.expand(-1, channels, -1, -1)]), torch.cat([labels, drawn_labels + first])


def image_inputs(
    opts: CnnOptions,
    kind: str,
    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray],
    validation: Validation,
    stats: tuple[tuple[float, ...], tuple[float, ...]],
) -> tuple[TrainData, SiameseConfig]:
    """TrainData from (images, labels, val_images, val_ok) uint8 tensors, with batch transforms; the CNN's config."""
    mean, std = stats
    augment_config = opts.augment_config(kind)
    augment = CharacterAugment(augment_config, opts.input_size) if augment_config is not None else None
    transform, eval_transform = _image_transform(mean, std, augment), _image_transform(mean, std, None)
    prepared = TrainData(*tensors, validation, transform=transform, eval_transform=eval_transform)
    model_config = SiameseConfig(
        "cnn",
        embedding_dim=opts.embedding_dim,
        input_size=opts.input_size,
        channels=opts.image_channels(kind),
        width=opts.width,
        blocks=opts.blocks,
        pool_grid=opts.pool_grid,
        crop=opts.crop,
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
