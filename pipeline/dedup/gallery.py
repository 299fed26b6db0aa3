"""The dedup review page: one strip of thumbnails per group, keeper first and outlined, scores to the keeper.

A sibling of `pipeline.evaluation.report`: both draw with `pipeline.core.html` (thumbnail cache, figures, stylesheet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from pipeline.core.html import Thumbnails, esc, figure, omitted, page
from pipeline.dedup.groups import Member

_EXTRA_CSS = """
.dgroup{border:1px solid #e4e4e4;border-radius:6px;padding:8px 10px;margin:10px 0;background:#fafafa}
.dgroup h3 span{font-weight:normal;color:#555}
"""


@dataclass(frozen=True)
class GalleryLimits:
    """Caps on rendering work (every thumbnail is embedded); what goes over a cap is counted, not drawn."""

    max_groups: int = 200
    max_members: int = 24
    thumb_px: int = 128
    threshold: float = float("-inf")  # members scoring below it against the keeper are shown as chained

    def __post_init__(self) -> None:
        if self.max_groups < 0 or self.max_members < 1 or not 16 <= self.thumb_px <= 1024:
            raise ValueError(f"GalleryLimits: need max_groups ≥ 0, max_members ≥ 1, thumb_px in 16..1024; got {self}")


def _bytes(n: int) -> str:
    """A file size for people: B, KiB or MiB."""
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.0f} KiB" if n < 2**20 else f"{n / 2**20:.1f} MiB"


def _chained(m: Member, threshold: float) -> bool:
    return m.tier == "near" and not m.score >= threshold


def _caption(m: Member, threshold: float) -> str:
    size = f"{m.width}×{m.height} · {_bytes(m.bytes)}"
    tier = "chained" if _chained(m, threshold) else m.tier
    return f"KEEP · {size}" if m.keeper else f"{tier} {m.score:.4f} · {size}"


def _group_html(group_id: int, members: list[Member], thumbs: Thumbnails, limits: GalleryLimits) -> str:
    shown = members[: limits.max_members]
    t = limits.threshold
    kinds = ["ok" if m.keeper else "bad" if _chained(m, t) else "plain" for m in shown]
    figures = "".join(figure(thumbs, m.path, _caption(m, t), kind) for m, kind in zip(shown, kinds, strict=True))
    hidden = len(members) - len(shown)
    more = f'<div class="more">+{hidden} more</div>' if hidden > 0 else ""
    moved = sum(m.bytes for m in members if not m.keeper)
    head = f"group {group_id} <span>· {len(members)} files · {_bytes(moved)} in non-keepers</span>"
    return f'<div class="dgroup"><h3>{head}</h3><div class="strip">{figures}{more}</div></div>'


def write_gallery(
    members: Sequence[Member],
    title: str,
    path: Path,
    notes: Sequence[str] = (),
    limits: GalleryLimits = GalleryLimits(),
) -> Path:
    """Write a self-contained HTML page of the groups (largest first, as `members` lists them).

    Args:
        members: group members, grouped by `group_id`, keeper first within each group.
        title: page title.
        path: the HTML file (parent folders are created).
        notes: lines shown above the groups.
        limits: caps on groups and thumbnails drawn.

    Returns:
        `path`.
    """
    thumbs = Thumbnails(limits.thumb_px)
    groups = [(gid, list(ms)) for gid, ms in groupby(members, key=lambda m: m.group_id)]
    shown = groups[: limits.max_groups]
    legend = (
        '<p class="legend">The suggested keeper (most pixels, then largest file) is outlined <b class="ok">green</b>; '
        "the others show their similarity to it and whether they are byte-identical (exact) or near; those outlined "
        '<b class="bad">red</b> score below the threshold against the keeper (they joined through another member) '
        "and are never moved.</p>"
    )
    intro = "".join(f"<p>{esc(line)}</p>" for line in notes)
    body = intro + legend + "".join(_group_html(gid, ms, thumbs, limits) for gid, ms in shown)
    body += omitted(len(groups) - len(shown), "groups") or ("" if groups else '<p class="none">No duplicates.</p>')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(title, body, limits.thumb_px, _EXTRA_CSS), encoding="utf-8")
    return path
