"""The static map: a scatter plot coloured by the label field, legend when there are few classes, rendered off-screen
to PNG bytes (matplotlib's Agg canvas, no pyplot state)."""

from __future__ import annotations

import io

import numpy as np

from pipeline.core.errors import LookalikeError
from pipeline.maps.build import EmbeddingMap
from pipeline.maps.colors import MAX_LEGEND

SIZE_IN = 10.0
DPI = 120


def map_png(emap: EmbeddingMap, size_in: float = SIZE_IN) -> bytes:
    """Draw the map as PNG bytes: every point coloured by its label, a legend (with counts) for up to `MAX_LEGEND`
    classes, the collection, encoder, method and sample in the title.

    Raises:
        LookalikeError: matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise LookalikeError("map PNGs need matplotlib: pip install 'lookalike[maps]'") from e
    figure = Figure(figsize=(size_in, size_in), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    xy = np.array([(p.x, p.y) for p in emap.points], dtype=np.float64).reshape(-1, 2)  # (N, 2)
    labels = [p.label for p in emap.points]
    colours, classes = emap.colours, emap.classes
    size = float(np.clip(20000.0 / max(len(xy), 1), 3.0, 40.0))  # marker area in pt²: smaller as points get dense
    axes.scatter(xy[:, 0], xy[:, 1], c=[colours[label] for label in labels], s=size, linewidths=0, alpha=0.8)
    if len(classes) <= MAX_LEGEND:
        counts = {c: labels.count(c) for c in classes}
        for c in classes:  # empty scatters as legend entries, one per class
            name = c if c is not None else f"(no {emap.color_by})"
            axes.scatter([], [], c=colours[c], s=30, label=f"{name} ({counts[c]})")
        axes.legend(loc="best", fontsize=8, title=emap.color_by, framealpha=0.85)
    axes.set_title(f"{emap.collection} · {emap.encoder} · {emap.method.value}\n{_subtitle(emap)}", fontsize=11)
    axes.set_xticks([])
    axes.set_yticks([])
    figure.tight_layout()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def _subtitle(emap: EmbeddingMap) -> str:
    classes = len(emap.classes)
    legend = "" if classes <= MAX_LEGEND else ", no legend"
    return f"{emap.describe()}, coloured by {emap.color_by} ({classes} classes{legend})"
