"""Self-contained HTML reports of an evaluation run: metrics, ROC curve, retrieval and verification failures."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import load_rgb
from pipeline.index.sources import display_path


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
    thumbs = _Thumbnails(thumb_px)
    parts = [
        _metrics_section(content.metrics),
        _roc_section(content.roc),
        _failures_section(content.failures, thumbs, limits),
        _pairs_section(content.pair_failures, thumbs, limits.max_pairs),
        _notes_section(content.notes),
    ]
    page = _PAGE.format(title=_esc(content.title), css=_CSS.replace("THUMB", str(thumb_px)), body="".join(parts))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


class _Thumbnails:
    """Thumbnail HTML per image path, each file decoded once per report (the same image recurs often)."""

    def __init__(self, px: int) -> None:
        self._px = px
        self._cache: dict[str, str] = {}

    def html(self, path: str) -> str:
        """An `<img>` with the image embedded as JPEG, or a grey placeholder naming why it could not be read."""
        if path not in self._cache:
            self._cache[path] = self._render(path)
        return self._cache[path]

    def _render(self, path: str) -> str:
        try:
            image = load_rgb(path)
        except ImageDecodeError as e:
            return f'<div class="ph">{_esc(str(e))}</div>'
        image.thumbnail((self._px, self._px))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return f'<img src="data:image/jpeg;base64,{data}" alt="{_esc(PurePath(path).name)}">'


def _esc(text: object) -> str:
    """HTML-escape any value, quotes included (it may land in an attribute); a file name that is not UTF-8 is shown
    with its odd bytes as `\\xNN` (`display_path`), as a UTF-8 page cannot hold it."""
    return html.escape(display_path(str(text)), quote=True)


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
        f'<tr><th scope="row">{_esc(name)}</th><td>{_esc(_format_value(value))}</td></tr>'
        for name, value in metrics.items()
    )
    return f'<section><h2>Metrics</h2><table class="metrics">{rows}</table></section>'


def _roc_section(roc: tuple[np.ndarray, np.ndarray] | None) -> str:
    if roc is None:
        return ""
    from pipeline.evaluation.plots import roc_png  # here, so reports without a ROC curve do not need matplotlib

    data = base64.b64encode(roc_png(roc[0], roc[1])).decode("ascii")
    return f'<section><h2>ROC</h2><img class="roc" src="data:image/png;base64,{data}" alt="ROC curve"></section>'


def _figure(thumbs: _Thumbnails, path: str, caption: str = "", kind: str = "plain") -> str:
    """One thumbnail with the file name (full path as tooltip) and an optional second caption line."""
    extra = f"<br>{_esc(caption)}" if caption else ""
    return (
        f'<figure class="{kind}" title="{_esc(path)}"><div class="box">{thumbs.html(path)}</div>'
        f'<figcaption><span class="name">{_esc(PurePath(path).name)}</span>{extra}</figcaption></figure>'
    )


def _group(label: str, figures: Iterable[str], extra: str = "") -> str:
    """A labelled strip of thumbnails."""
    strip = f'<div class="strip">{"".join(figures)}{extra}</div>'
    return f'<div class="group"><div class="label">{_esc(label)}</div>{strip}</div>'


def _omitted(count: int, what: str) -> str:
    return f'<p class="omitted">{count} more {what} not shown.</p>' if count > 0 else ""


def _failures_section(failures: tuple[FailureCase, ...], thumbs: _Thumbnails, limits: ReportLimits) -> str:
    if not failures:
        return ""
    shown = failures[: limits.max_failures]
    cases = "".join(_failure_case(i, case, thumbs, limits.max_ranked) for i, case in enumerate(shown, start=1))
    legend = '<p class="legend">Results outlined <b class="ok">green</b> are correct, <b class="bad">red</b> wrong.</p>'
    return (
        f"<section><h2>Retrieval failures ({len(failures)})</h2>{legend}{cases}"
        f"{_omitted(len(failures) - len(shown), 'failure cases')}</section>"
    )


def _failure_case(number: int, case: FailureCase, thumbs: _Thumbnails, max_ranked: int) -> str:
    truth = [_figure(thumbs, p, kind="truth") for p in case.truth]
    unknown = "" if case.truth else '<div class="ph">unknown</div>'
    ranked = [
        _figure(thumbs, item.path, f"#{rank} {item.score:.4f}", "ok" if item.correct else "bad")
        for rank, item in enumerate(case.ranked[:max_ranked], start=1)
    ]
    hidden = len(case.ranked) - len(ranked)
    more = f'<div class="more">+{hidden} more</div>' if hidden > 0 else ""
    note = f'<p class="note">{_esc(case.note)}</p>' if case.note else ""
    return (
        f'<div class="case"><h3>#{number}</h3>{note}<div class="row">'
        f"{_group('query', [_figure(thumbs, case.query, kind='query')])}"
        f"{_group('truth', truth, unknown)}{_group(f'top {len(case.ranked)}', ranked, more)}</div></div>"
    )


def _pairs_section(pairs: tuple[PairCase, ...], thumbs: _Thumbnails, max_pairs: int) -> str:
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


def _pair_kind(heading: str, pairs: list[PairCase], thumbs: _Thumbnails, max_pairs: int) -> str:
    shown = pairs[:max_pairs]
    cards = "".join(
        f'<div class="pair">{_figure(thumbs, p.left)}{_figure(thumbs, p.right)}'
        f'<div class="score">score {p.score:.4f} (threshold {p.threshold:.4f})</div></div>'
        for p in shown
    )
    body = f'<div class="pairs">{cards}</div>' if cards else '<p class="none">None.</p>'
    return f"<h3>{_esc(heading)} ({len(pairs)})</h3>{body}{_omitted(len(pairs) - len(shown), 'pairs')}"


def _notes_section(notes: tuple[str, ...]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_esc(line)}</li>" for line in notes)
    return f'<section><h2>Notes</h2><ul class="notes">{items}</ul></section>'


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""

# THUMB is replaced by the thumbnail size in pixels (str.format would trip over the CSS braces).
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:14px;margin:4px 0}
table.metrics{border-collapse:collapse}
table.metrics th,table.metrics td{border:1px solid #ddd;padding:4px 10px;text-align:left}
table.metrics td{font-family:ui-monospace,monospace;text-align:right}
img.roc{max-width:100%;border:1px solid #ddd}
.case{border:1px solid #e4e4e4;border-radius:6px;padding:8px 10px;margin:10px 0;background:#fafafa}
.note{margin:2px 0 6px;color:#555}
.row{display:grid;grid-template-columns:auto auto 1fr;gap:16px;align-items:start}
.label{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.05em;margin-bottom:2px}
.strip{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}
figure{margin:0;width:calc(THUMBpx + 8px);text-align:center}
.box{height:calc(THUMBpx + 6px);display:flex;align-items:center;justify-content:center}
figure img,figure .ph{display:block;margin:0 auto;border:3px solid #ccc;border-radius:3px;max-width:THUMBpx}
figure.ok img,figure.ok .ph{border-color:#2a9d3a}
figure.bad img,figure.bad .ph{border-color:#d33}
figure.truth img,figure.truth .ph{border-color:#2a6fd3}
figcaption{font-size:11px;word-break:break-all;line-height:1.25;margin-top:2px}
.ph{width:THUMBpx;height:THUMBpx;background:#bbb;color:#222;font-size:11px;display:flex;align-items:center;
justify-content:center;text-align:center;padding:4px;box-sizing:border-box;overflow:hidden;border:3px solid #ccc}
.more{align-self:center;color:#666;font-size:12px}
.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(calc(2 * THUMBpx + 40px),1fr));gap:10px}
.pair{display:flex;flex-wrap:wrap;gap:6px;border:1px solid #e4e4e4;border-radius:6px;padding:6px;background:#fafafa}
.score{width:100%;font-family:ui-monospace,monospace;font-size:12px}
.omitted,.none{color:#a60;font-style:italic}
b.ok{color:#2a9d3a}b.bad{color:#d33}
ul.notes li{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
"""
