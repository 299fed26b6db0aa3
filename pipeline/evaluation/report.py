"""Self-contained HTML reports of an evaluation run: metrics, ROC curve, retrieval and verification failures."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.html import Thumbnails, esc, figure, omitted, page


@dataclass(frozen=True)
class RankedItem:
    """One result the system returned for a query."""

    path: str
    score: float  # similarity, higher is better
    correct: bool


@dataclass(frozen=True)
class FailureCase:
    """A retrieval query the system got wrong, for the gallery.

    Attributes:
        query: the query image path.
        truth: the correct match(es); empty when unknown.
        ranked: the top-k results, best first.
        note: one line for people, e.g. "true match at rank 7 (score 0.41)".
    """

    query: str
    truth: tuple[str, ...]
    ranked: tuple[RankedItem, ...]
    note: str = ""


@dataclass(frozen=True)
class PairCase:
    """A scored verification pair; `score >= threshold` means the system said "same"."""

    left: str
    right: str
    score: float
    same: bool  # ground truth
    threshold: float

    @property
    def false_accept(self) -> bool:
        """Different in truth, accepted by the system."""
        return not self.same and self.score >= self.threshold

    @property
    def false_reject(self) -> bool:
        """Same in truth, rejected by the system."""
        return self.same and self.score < self.threshold


@dataclass(frozen=True)
class ReportContent:
    """Everything one report shows; each part is optional except the title.

    Attributes:
        title: page title and heading.
        metrics: flat name → value; floats are shown to 4 decimal places.
        failures: retrieval failures, shown in the given order (put the worst first).
        pair_failures: verification errors; correctly decided pairs in here are skipped and counted.
        roc: (fpr, tpr) arrays for a ROC curve, or None for no plot.
        notes: free-text lines, e.g. the exact command or how many images had no face.
    """

    title: str
    metrics: Mapping[str, object]
    failures: tuple[FailureCase, ...] = ()
    pair_failures: tuple[PairCase, ...] = ()
    roc: tuple[np.ndarray, np.ndarray] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportLimits:
    """Caps on rendering work; what goes over a cap is counted on the page, not drawn.

    Attributes:
        max_failures: retrieval failure cases drawn.
        max_pairs: pairs drawn in each of the false-accept and false-reject sections.
        max_ranked: results drawn per failure case.
    """

    max_failures: int = 50
    max_pairs: int = 40
    max_ranked: int = 10

    def __post_init__(self) -> None:
        if min(self.max_failures, self.max_pairs, self.max_ranked) < 0:
            raise ValueError(f"ReportLimits: caps must be ≥ 0, got {self}")


def write_report(
    content: ReportContent, path: Path, thumb_px: int = 112, limits: ReportLimits = ReportLimits()
) -> Path:
    """Write `content` as one HTML file that needs no other file (images are embedded as base64).

    Args:
        content: what to show.
        path: the HTML file to write; missing parent folders are created.
        thumb_px: long side of each thumbnail in pixels.
        limits: caps on how many cases are drawn.

    Returns:
        `path`.

    Raises:
        ValueError: `thumb_px` is outside 16..1024, or `content.roc` is malformed.
        ImportError: `content.roc` is given but matplotlib is not installed.
    """
    if not 16 <= thumb_px <= 1024:
        raise ValueError(f"write_report: thumb_px must be in 16..1024, got {thumb_px}")
    thumbs = Thumbnails(thumb_px)
    parts = [
        _metrics_section(content.metrics),
        _roc_section(content.roc),
        _failures_section(content.failures, thumbs, limits),
        _pairs_section(content.pair_failures, thumbs, limits.max_pairs),
        _notes_section(content.notes),
    ]
    document = page(content.title, "".join(parts), thumb_px)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


def _format_value(value: object) -> str:
    """Metric value as text: floats (numpy's too) to 4 decimal places, everything else as `str`."""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return f"{number:.4f}" if math.isfinite(number) else str(number)
    return str(value)


def _metrics_section(metrics: Mapping[str, object]) -> str:
    if not metrics:
        return ""
    rows = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td>{esc(_format_value(value))}</td></tr>'
        for name, value in metrics.items()
    )
    return f'<section><h2>Metrics</h2><table class="metrics">{rows}</table></section>'


def _roc_section(roc: tuple[np.ndarray, np.ndarray] | None) -> str:
    if roc is None:
        return ""
    from pipeline.evaluation.plots import roc_png  # here, so reports without a ROC curve do not need matplotlib

    data = base64.b64encode(roc_png(roc[0], roc[1])).decode("ascii")
    return f'<section><h2>ROC</h2><img class="roc" src="data:image/png;base64,{data}" alt="ROC curve"></section>'


def _group(label: str, figures: Iterable[str], extra: str = "") -> str:
    """A labelled strip of thumbnails."""
    strip = f'<div class="strip">{"".join(figures)}{extra}</div>'
    return f'<div class="group"><div class="label">{esc(label)}</div>{strip}</div>'


def _failures_section(failures: tuple[FailureCase, ...], thumbs: Thumbnails, limits: ReportLimits) -> str:
    if not failures:
        return ""
    shown = failures[: limits.max_failures]
    cases = "".join(_failure_case(i, case, thumbs, limits.max_ranked) for i, case in enumerate(shown, start=1))
    legend = '<p class="legend">Results outlined <b class="ok">green</b> are correct, <b class="bad">red</b> wrong.</p>'
    return (
        f"<section><h2>Retrieval failures ({len(failures)})</h2>{legend}{cases}"
        f"{omitted(len(failures) - len(shown), 'failure cases')}</section>"
    )


def _failure_case(number: int, case: FailureCase, thumbs: Thumbnails, max_ranked: int) -> str:
    truth = [figure(thumbs, p, kind="truth") for p in case.truth]
    unknown = "" if case.truth else '<div class="ph">unknown</div>'
    ranked = [
        figure(thumbs, item.path, f"#{rank} {item.score:.4f}", "ok" if item.correct else "bad")
        for rank, item in enumerate(case.ranked[:max_ranked], start=1)
    ]
    hidden = len(case.ranked) - len(ranked)
    more = f'<div class="more">+{hidden} more</div>' if hidden > 0 else ""
    note = f'<p class="note">{esc(case.note)}</p>' if case.note else ""
    return (
        f'<div class="case"><h3>#{number}</h3>{note}<div class="row">'
        f"{_group('query', [figure(thumbs, case.query, kind='query')])}"
        f"{_group('truth', truth, unknown)}{_group(f'top {len(case.ranked)}', ranked, more)}</div></div>"
    )


def _pairs_section(pairs: tuple[PairCase, ...], thumbs: Thumbnails, max_pairs: int) -> str:
    if not pairs:
        return ""
    accepts = [p for p in pairs if p.false_accept]
    rejects = [p for p in pairs if p.false_reject]
    correct = len(pairs) - len(accepts) - len(rejects)
    skipped = f'<p class="omitted">{correct} correctly decided pair(s) skipped (not errors).</p>' if correct else ""
    return (
        f"<section><h2>Verification errors</h2>{skipped}"
        f"{_pair_kind('False accepts (different, scored ≥ threshold)', accepts, thumbs, max_pairs)}"
        f"{_pair_kind('False rejects (same, scored < threshold)', rejects, thumbs, max_pairs)}</section>"
    )


def _pair_kind(heading: str, pairs: list[PairCase], thumbs: Thumbnails, max_pairs: int) -> str:
    shown = pairs[:max_pairs]
    cards = "".join(
        f'<div class="pair">{figure(thumbs, p.left)}{figure(thumbs, p.right)}'
        f'<div class="score">score {p.score:.4f} (threshold {p.threshold:.4f})</div></div>'
        for p in shown
    )
    body = f'<div class="pairs">{cards}</div>' if cards else '<p class="none">None.</p>'
    return f"<h3>{esc(heading)} ({len(pairs)})</h3>{body}{omitted(len(pairs) - len(shown), 'pairs')}"


def _notes_section(notes: tuple[str, ...]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in notes)
    return f'<section><h2>Notes</h2><ul class="notes">{items}</ul></section>'
