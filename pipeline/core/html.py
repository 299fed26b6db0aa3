"""Self-contained HTML pages with embedded thumbnails: the page and stylesheet, escaping, one cached thumbnail per
image, figures. Shared by the evaluation reports and the dedup gallery."""

from __future__ import annotations

import base64
import html
from pathlib import PurePath

from pipeline.core.errors import ImageDecodeError
from pipeline.core.files import display_path
from pipeline.core.images import thumbnail_jpeg


class Thumbnails:
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
            jpeg = thumbnail_jpeg(path, self._px)
        except ImageDecodeError as e:
            return f'<div class="ph">{esc(str(e))}</div>'
        data = base64.b64encode(jpeg).decode("ascii")
        return f'<img src="data:image/jpeg;base64,{data}" alt="{esc(PurePath(path).name)}">'


def esc(text: object) -> str:
    """HTML-escape any value, quotes included (it may land in an attribute); a file name that is not UTF-8 is shown
    with its odd bytes as `\\xNN` (`display_path`), as a UTF-8 page cannot hold it."""
    return html.escape(display_path(str(text)), quote=True)


def figure(thumbs: Thumbnails, path: str, caption: str = "", kind: str = "plain") -> str:
    """One thumbnail with the file name (full path as tooltip) and an optional second caption line."""
    extra = f"<br>{esc(caption)}" if caption else ""
    return (
        f'<figure class="{kind}" title="{esc(path)}"><div class="box">{thumbs.html(path)}</div>'
        f'<figcaption><span class="name">{esc(PurePath(path).name)}</span>{extra}</figcaption></figure>'
    )


def omitted(count: int, what: str) -> str:
    return f'<p class="omitted">{count} more {what} not shown.</p>' if count > 0 else ""


def page(title: str, body: str, thumb_px: int, extra_css: str = "") -> str:
    """A whole HTML document: `title` as its heading, the shared stylesheet sized for `thumb_px` thumbnails."""
    css = CSS.replace("THUMB", str(thumb_px)) + extra_css
    return PAGE.format(title=esc(title), css=css, body=body)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""

# THUMB is replaced by the thumbnail size in pixels (str.format would trip over the CSS braces).
CSS = """
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
