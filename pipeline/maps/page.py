"""The interactive map: one self-contained HTML page (canvas + a little inline JS, no CDN, nothing fetched) where
hovering a point shows its thumbnail and path and clicking opens the image; or the same map as a fragment for a page
of `lookalike serve`, which serves the thumbnails itself."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.core.errors import ImageDecodeError
from pipeline.core.html import esc
from pipeline.core.images import thumbnail_jpeg
from pipeline.maps.build import EmbeddingMap
from pipeline.maps.colors import MAX_LEGEND
from pipeline.maps.page_assets import MAP_CSS, MAP_JS

UrlFor = Callable[[str], str]  # indexed path → URL


@dataclass(frozen=True)
class PageConfig:
    """Thumbnails of the standalone page: at most `max_thumbnails` points get one, embedded as a `thumb_px` JPEG
    (the others show their path only), so a 20,000-point page stays a few MB."""

    max_thumbnails: int = 1000
    thumb_px: int = 64
    progress: bool = False


def map_html(
    emap: EmbeddingMap,
    thumb_url: UrlFor | None = None,
    open_url: UrlFor | None = None,
    config: PageConfig = PageConfig(),
) -> str:
    """A whole HTML page holding the map (see `map_fragment`), titled with the collection, encoder and method."""
    title = f"Embedding map: {emap.collection} · {emap.encoder} · {emap.method.value}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>body{{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}}h1{{font-size:20px;margin:0 0 4px}}"
        f"</style></head>\n<body><h1>{esc(title)}</h1>\n{map_fragment(emap, thumb_url, open_url, config)}\n"
        "</body></html>\n"
    )


def map_fragment(
    emap: EmbeddingMap,
    thumb_url: UrlFor | None = None,
    open_url: UrlFor | None = None,
    config: PageConfig = PageConfig(),
) -> str:
    """The map as an HTML fragment (style, a canvas, the legend, the points as JSON, inline JS) to place in a page.

    Args:
        thumb_url: a thumbnail URL per indexed path (e.g. `lookalike serve`'s); None embeds `config.max_thumbnails`
            JPEG thumbnails as data URLs, so the page needs nothing but itself.
        open_url: the URL a click opens per path; None opens the file itself (a file:// URL of the absolute path).
    """
    thumbs = _thumbnail_column(emap, thumb_url, config)
    opener = open_url or _file_url
    classes = emap.classes
    index = {label: i for i, label in enumerate(classes)}
    data = {
        "classes": [c if c is not None else f"(no {emap.color_by})" for c in classes],
        "colours": [emap.colours[c] for c in classes],
        # one row per point: x, y, class index, path, point id, thumbnail URL ("" = none), URL a click opens
        "points": [
            [p.x, p.y, index[p.label], p.path, p.point_id, thumbs[i], opener(p.path) if p.path else ""]
            for i, p in enumerate(emap.points)
        ],
    }
    return (
        f"<style>{MAP_CSS}</style>\n"
        f'<div class="lk-map"><p class="lk-meta">{esc(_meta(emap, thumbs, thumb_url is None, config))}</p>'
        f'<div class="lk-stage"><canvas></canvas><div class="lk-tip"><img alt=""><div class="lk-path"></div>'
        f'<div class="lk-label"></div></div></div>{_legend(emap)}'
        f'<script type="application/json" class="lk-data">{_script_json(data)}</script></div>'
        f"<script>{MAP_JS}</script>"
    )


def thumbnail_data_url(path: str, px: int) -> str:
    """A `data:image/jpeg;base64,…` thumbnail (longest side `px`) of an image, decoded safely
    (`pipeline.core.images.load_rgb`); "" when it cannot be read (moved, damaged, too large)."""
    try:
        jpeg = thumbnail_jpeg(path, px, quality=75)
    except ImageDecodeError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _thumbnail_column(emap: EmbeddingMap, thumb_url: UrlFor | None, config: PageConfig) -> list[str]:
    """Per point, its thumbnail URL or "": served URLs for every point, else data URLs for the first
    `max_thumbnails` (point ids are content hashes, so these are a spread-out, reproducible subset)."""
    if thumb_url is not None:
        return [thumb_url(p.path) if p.path else "" for p in emap.points]
    shown = emap.points[: config.max_thumbnails]
    made = [
        thumbnail_data_url(p.path, config.thumb_px) if p.path else ""
        for p in tqdm(shown, desc="thumbnails", unit="img", disable=not config.progress)
    ]
    return made + [""] * (len(emap.points) - len(shown))


def _file_url(path: str) -> str:
    local = Path(path)
    return local.as_uri() if local.is_absolute() else ""


def _meta(emap: EmbeddingMap, thumbs: Sequence[str], embedded: bool, config: PageConfig) -> str:
    have = sum(1 for t in thumbs if t)
    where = (
        f"thumbnails embedded for {have:,} of {len(thumbs):,} points ({config.thumb_px} px JPEG, at most "
        f"{config.max_thumbnails:,})"
        if embedded
        else f"thumbnails for {have:,} points"
    )
    return (
        f"{emap.describe()} · vector {emap.vector} · coloured by {emap.color_by} ({len(emap.classes)} classes) · "
        f"{where} · hover: thumbnail and path · click: open the image · wheel: zoom · drag: pan · double-click: reset"
    )


def _legend(emap: EmbeddingMap) -> str:
    classes = emap.classes
    if len(classes) > MAX_LEGEND:
        field = esc(emap.color_by)
        return f'<p class="lk-meta">{len(classes):,} classes: no legend; hover a point for its {field}.</p>'
    counts: dict[str | None, int] = {}
    for p in emap.points:
        counts[p.label] = counts.get(p.label, 0) + 1
    items = "".join(
        f'<li data-i="{i}" title="click to hide or show"><span class="lk-swatch" style="background:{emap.colours[c]}">'
        f"</span>{esc(c if c is not None else f'(no {emap.color_by})')} ({counts[c]:,})</li>"
        for i, c in enumerate(classes)
    )
    return f'<ul class="lk-legend">{items}</ul>'


def _script_json(data: object) -> str:
    """JSON safe inside a <script> element: no `</script>`, `<!--` or `&` can close or confuse it."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
