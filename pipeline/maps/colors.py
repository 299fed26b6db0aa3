"""One colour per class of the payload field a map is coloured by, shared by the PNG and the HTML page."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Sequence

# matplotlib's tab20, pairs reordered so the first ten are tab10 (the strong shades first)
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
MAX_LEGEND = len(PALETTE)  # classes beyond this get evenly spread hues and no legend
UNLABELLED = "#b0b0b0"
GOLDEN = 0.618033988749895


def class_order(labels: Iterable[str | None]) -> list[str | None]:
    """The distinct labels, sorted (numbers by value, then text), with None (no value) last."""
    distinct = set(labels)
    named = sorted((label for label in distinct if label is not None), key=_sort_key)
    ordered: list[str | None] = list(named)
    return [*ordered, None] if None in distinct else ordered


def label_colours(classes: Sequence[str | None]) -> dict[str | None, str]:
    """A `#rrggbb` colour per class: the palette for up to `MAX_LEGEND` named classes, else hues spread by the golden
    ratio; None (points without the field) is always grey."""
    named = [c for c in classes if c is not None]
    colours: dict[str | None, str] = {}
    for i, label in enumerate(named):
        colours[label] = PALETTE[i] if len(named) <= MAX_LEGEND else _hue(i)
    if None in classes:
        colours[None] = UNLABELLED
    return colours


def _hue(i: int) -> str:
    r, g, b = colorsys.hsv_to_rgb((i * GOLDEN) % 1.0, 0.65, 0.85)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _sort_key(label: str) -> tuple[int, float, str]:
    try:
        value = float(label)
    except ValueError:
        return (1, 0.0, label)
    return (0, value, label) if math.isfinite(value) else (1, 0.0, label)
