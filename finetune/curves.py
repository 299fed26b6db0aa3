"""A training run's curves (PNG): training loss and validation metric per epoch, drawn without pyplot's global state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from finetune.train import EpochRecord

CURVES_FILE = "curves.png"


def write_curves(history: Sequence[EpochRecord], metric_name: str, path: Path, best_epoch: int) -> Path:
    """Training loss and validation metric per epoch, side by side (no pyplot global state).

    Without validation (`--val-fraction 0`) there is no metric to draw: one loss panel, marking the kept epoch.

    Returns:
        `path`, written.

    Raises:
        OSError: the folder or the file cannot be written.
    """
    validated = not all(math.isnan(r.metric) for r in history)
    figure = Figure(figsize=(9 if validated else 4.5, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2 if validated else 1, squeeze=False)[0]
    loss_axes = panels[0]
    trained = [r for r in history if not math.isnan(r.loss)]
    loss_axes.plot([r.epoch for r in trained], [r.loss for r in trained], marker="o", markersize=3)
    loss_axes.set(title="training loss", xlabel="epoch", ylabel="loss")
    if validated:
        metric_axes = panels[1]
        metric_axes.plot([r.epoch for r in history], [r.metric for r in history], marker="o", markersize=3)
        metric_axes.set(title=f"validation {metric_name}", xlabel="epoch (0 = before training)", ylabel=metric_name)
    # The kept epoch goes on the metric panel (a metric rises: its lower right is empty) or, with no metric, on the
    # loss panel (a loss falls: its upper right is empty).
    marked, label, corner = (
        (panels[1], f"best (epoch {best_epoch})", "lower right")
        if validated
        else (loss_axes, f"kept, no validation (epoch {best_epoch})", "upper right")
    )
    marked.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=label)
    marked.legend(loc=corner)
    for axes in panels:
        axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
