"""Static plots for reports, rendered off-screen to PNG bytes (matplotlib's Agg canvas, no global backend switch)."""

from __future__ import annotations

import io

import numpy as np


def roc_png(fpr: np.ndarray, tpr: np.ndarray, title: str = "ROC", size_in: float = 4.5) -> bytes:
    """Draw a ROC curve (linear axes, chance diagonal, AUC in the legend) as PNG bytes.

    Uses `matplotlib.figure.Figure` with its own `FigureCanvasAgg`, so nothing touches pyplot's global
    state or `matplotlib.use`, and it works in threads and on machines without a display.

    Args:
        fpr: (N,) false-accept rates in [0, 1], as from `pipeline.metrics.pairs.roc_curve`.
        tpr: (N,) true-accept rates in [0, 1], same length.
        title: the plot title.
        size_in: width and height of the figure in inches (rendered at 100 dpi).

    Returns:
        The encoded PNG.

    Raises:
        ValueError: the arrays are not 1-D of the same length ≥ 2, or hold values outside [0, 1] or NaN.
        ImportError: matplotlib is not installed (it ships with the `train` extra).
    """
    x, y = _check_roc(fpr, tpr)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("the ROC plot needs matplotlib: pip install 'lookalike[train]'") from e
    order = np.argsort(x, kind="stable")  # the AUC sum needs increasing fpr; stable keeps the step shape
    x, y = x[order], y[order]
    auc = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    figure = Figure(figsize=(size_in, size_in), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="#999999", linewidth=1, label="chance")
    axes.plot(x, y, color="#1f5fbf", linewidth=2, label=f"AUC = {auc:.4f}")
    axes.set(xlim=(0.0, 1.0), ylim=(0.0, 1.0), xlabel="false accept rate", ylabel="true accept rate", title=title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def _check_roc(fpr: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both arrays as float64 after checking shape and range."""
    x = np.asarray(fpr, dtype=np.float64)
    y = np.asarray(tpr, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"roc_png: fpr and tpr must be 1-D of equal length ≥ 2, got shapes {x.shape} and {y.shape}")
    both = np.concatenate([x, y])
    if not np.all((both >= 0.0) & (both <= 1.0)):  # also false for NaN
        raise ValueError("roc_png: fpr and tpr must lie in [0, 1] with no NaN (pass rates, not counts or scores)")
    return x, y
