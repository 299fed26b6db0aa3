"""`finetune`: train a Siamese head or CNN; the result loads as the encoder siamese@OUT."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.common import (
    ALL_RUN_OPTIONS,
    RunOptions,
    open_range,
    user_errors,
    with_option_group,
    with_run_options,
)
from finetune.config import (
    FREE_MARGINS,
    CnnOptions,
    FinetuneConfig,
    HeadOptions,
    LossConfig,
    LossName,
    Mining,
    Mode,
    TrainConfig,
    parse_blocks,
)
from pipeline.core.device import resolve_device
from pipeline.encoders.siamese.model import Crop

if TYPE_CHECKING:  # training needs the [train] extra (pytorch-metric-learning, matplotlib), other commands not
    from finetune.run import FinetuneResult

FINETUNE_DATA_HELP = (
    "Training data KIND:PATH — folder:DIR (a sub-folder per class) · manifest:FILE (.csv/.parquet with path,label"
    "[,group]) · omniglot:DIR (a set folder, e.g. images_background_small1) · tll:DIR (train.csv pairs; eval's "
    "held-out pairs are never used) · lfw:DIR (pairsDevTrain.txt, images labelled by person) · copies:DIR|FILE "
    "(any folder or manifest of images, no labels: self-supervised copy detection, each image and its "
    "--copies-per-image transformed copies are a class; cnn mode; validation: recall@1 of copies of held-out images)"
)


def _free_margins() -> str:
    """The free-space default margins for help text: "contrastive 2.0, triplet 1.0"."""
    return ", ".join(f"{name} {margin:.1f}" for name, margin in FREE_MARGINS.items())


@dataclass(frozen=True)
class TrainArgs:
    """Optimisation options of `finetune`."""

    epochs: Annotated[int, typer.Option(min=1, help="Most epochs (early stopping may end sooner)")] = 30
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per batch")] = 128
    m_per_class: Annotated[int, typer.Option(min=1, help="Examples of each class per batch")] = 4
    steps_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Batches per epoch [default: one pass over the examples]")
    ] = None
    lr: Annotated[
        float, typer.Option(callback=open_range(0.0, 10.0, low_open=True), help="AdamW learning rate (cosine decay)")
    ] = 1e-3
    patience: Annotated[
        int, typer.Option(min=1, help="Stop after this many epochs without a better validation metric")
    ] = 8
    min_delta: Annotated[float, typer.Option(min=0.0, help="Smallest validation gain that counts as better")] = 0.0
    seed: Annotated[int, typer.Option(min=0, help="Seed for the split, sampling and initialisation")] = 0

    def config(self, progress: bool) -> TrainConfig:
        return TrainConfig(
            self.epochs,
            self.batch_size,
            self.m_per_class,
            self.lr,
            patience=self.patience,
            min_delta=self.min_delta,
            seed=self.seed,
            steps_per_epoch=self.steps_per_epoch,
            progress=progress,
        )


@dataclass(frozen=True)
class HeadArgs:
    """Head-mode options of `finetune` (an MLP on a frozen backbone's vectors)."""

    backbone: Annotated[str, typer.Option(help="head: frozen encoder spec (vectors cached in Qdrant)")] = "dlib"
    hidden_dim: Annotated[int, typer.Option(min=1, help="head: hidden width of the MLP")] = 512
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="head: backbone vector cache (default: DATASET-BACKBONE)")
    ] = None

    def options(self, embedding_dim: int | None, run: RunOptions) -> HeadOptions:
        no_face = run.no_face_policy()
        return HeadOptions(
            self.backbone,
            self.hidden_dim,
            embedding_dim,
            collection=self.collection,
            no_face=no_face,
            workers=run.workers,
        )


@dataclass(frozen=True)
class CnnArgs:
    """CNN-mode options of `finetune` (a ResNet trained from scratch)."""

    input_size: Annotated[int, typer.Option(min=8, max=512, help="cnn: square input side in pixels")] = 28
    channels: Annotated[
        int | None, typer.Option(help="cnn: 1 (greyscale) or 3 (RGB) [default: 3 for copies:, else 1]")
    ] = None
    width: Annotated[int, typer.Option(min=1, max=256, help="cnn: channels of the first stage (doubled per stage)")] = (
        32
    )
    blocks: Annotated[str, typer.Option(help="cnn: residual blocks per stage, comma-separated")] = "1,1,1"
    pool_grid: Annotated[
        int, typer.Option(help="cnn: pool the last feature map to G×G and flatten (1 = global average pooling)")
    ] = 1
    rotate_classes: Annotated[bool, typer.Option(help="cnn: each 90° rotation of a class is a new class")] = False
    augment: Annotated[
        bool, typer.Option(help="cnn: random warps per batch (copies: flip + light affine; else affine + elastic)")
    ] = True
    synthetic_classes: Annotated[
        int,
        typer.Option(
            help="cnn: add N invented pen-stroke characters (20 drawings each) as extra classes — for handwritten "
            "characters with few real classes, e.g. 2000 (README: measured effect)"
        ),
    ] = 0
    crop: Annotated[
        Crop,
        typer.Option(
            help="cnn: none (resize the whole image) | ink (cut to a square around the strokes first: drawings on a "
            "plain ground; the encoder does the same)"
        ),
    ] = Crop.NONE
    copies_per_image: Annotated[
        int,
        typer.Option(help="copies: transformed copies per image, made once and held in memory (N × (1+K) × C × S² B)"),
    ] = 10

    def options(self, embedding_dim: int | None) -> CnnOptions:
        return CnnOptions(
            self.input_size,
            self.channels,
            self.width,
            parse_blocks(self.blocks),
            embedding_dim=embedding_dim or 128,
            rotate_classes=self.rotate_classes,
            augment="auto" if self.augment else None,
            copies_per_image=self.copies_per_image,
            pool_grid=self.pool_grid,
            synthetic_classes=self.synthetic_classes,
            crop=self.crop,
        )


@with_option_group("cnn", CnnArgs)
@with_option_group("head", HeadArgs)
@with_option_group("train", TrainArgs)
@with_run_options(*ALL_RUN_OPTIONS)
def finetune_command(
    data: Annotated[str, typer.Option("--data", help=FINETUNE_DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint folder; it then loads as encoder siamese@DIR")],
    mode: Annotated[Mode, typer.Option(help="head: MLP on a frozen --backbone | cnn: ResNet from scratch")] = Mode.CNN,
    loss: Annotated[
        LossName,
        typer.Option(
            help="contrastive | triplet | bce (Koch: weighted |f1 − f2|) | supcon (all batch pairs) | supcon-local "
            "(cnn: supcon on global + cell-to-cell similarity; read the result as siamese:local@OUT)"
        ),
    ] = LossName.CONTRASTIVE,
    mining: Annotated[Mining, typer.Option(help="Triplet mining: semihard | batch-hard | all")] = Mining.SEMIHARD,
    margin: Annotated[
        float | None,
        typer.Option(
            help="Loss margin (default: contrastive 1.0, triplet 0.2; supcon: temperature 0.1; with --no-normalize, "
            f"in raw Euclidean units: {_free_margins()})"
        ),
    ] = None,
    normalize: Annotated[
        bool,
        typer.Option(
            help="L2-normalise the output (cosine distance); --no-normalize: a free Euclidean space, e.g. a 2-D plane "
            f"(contrastive or triplet only; margins in raw units, default {_free_margins()}; the encoder declares "
            "euclid)"
        ),
    ] = True,
    embedding_dim: Annotated[int | None, typer.Option(min=1, help="Output size (head: backbone's; cnn: 128)")] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            callback=open_range(0.0, 1.0, high_open=True),
            help="Share of classes (tll: pairs) held out for validation; 0 = none: train on all for exactly --epochs "
            "and keep the last weights (a refit once a split has chosen --epochs)",
        ),
    ] = 0.2,
    *,
    train: TrainArgs,
    head: HeadArgs,
    cnn: CnnArgs,
    run: RunOptions,
) -> None:
    """Train a Siamese head (on a frozen encoder) or CNN (from scratch); the result is the encoder siamese@OUT."""
    # Imported here: training needs the [train] extra (pytorch-metric-learning, matplotlib), the other commands not.
    from finetune.run import run_finetune

    with user_errors():
        config = FinetuneConfig(
            data=data,
            out=out,
            mode=mode,
            loss=LossConfig(loss, margin, mining, normalize),
            train=train.config(run.progress),
            head=head.options(embedding_dim, run),
            cnn=cnn.options(embedding_dim),
            val_fraction=val_fraction,
        )
        torch_device = resolve_device(run.device)
        with run.open_store() if mode == Mode.HEAD else nullcontext() as vs:
            result = run_finetune(config, torch_device, vs)
    _print_finetune(result, mode, loss, data)


def _print_finetune(result: FinetuneResult, mode: Mode, loss: LossName, data: str) -> None:
    if math.isnan(result.best_metric):
        outcome = f"no validation: kept epoch {result.best_epoch} of {result.epochs_run}"
    else:
        outcome = (
            f"best {result.metric_name} {result.best_metric:.4f} at epoch {result.best_epoch} of {result.epochs_run}"
            f" (before training {result.baseline_metric:.4f})"
        )
    typer.echo(
        f"finetune · {mode} · {loss} · {data}: {outcome} · "
        f"{result.train_examples} examples, {result.train_classes} classes · {result.seconds:.1f} s"
    )
    if result.undecodable:
        typer.echo(f"  skipped {result.undecodable} images that could not be decoded")
    typer.echo(f"  wrote {result.out} (model.safetensors, config.json, curves.png, history.json)")
    typer.echo(f"  use it as: -e {result.encoder_spec}")
