"""Thumbnails of indexed points only: addressed by point id, the file found through the point's payload (never a
path from the request), decoded safely, resized server-side and cached in memory."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from pipeline.core.errors import ImageDecodeError
from pipeline.core.files import is_regular_file
from pipeline.core.images import DecodeLimits
from pipeline.core.images import thumbnail_jpeg as image_thumbnail
from pipeline.serve.state import ServeState, parse_point_id

THUMB_SIZES = (64, 96, 128, 160, 200, 256, 320)  # the sizes served; others round up, so the cache stays small
_LIMITS = DecodeLimits()


def thumb_size(px: int) -> int:
    """The served size for a requested one: the smallest listed size at least as large, else the largest."""
    return next((s for s in THUMB_SIZES if s >= px), THUMB_SIZES[-1])


def point_files(payload: dict[str, Any]) -> list[str]:
    """The files holding a point's bytes: its stored path, then the byte-identical copies ingest recorded."""
    paths = [payload.get("path"), *(payload.get("duplicate_paths") or [])]
    return [p for p in paths if isinstance(p, str) and p]


def thumbnail_jpeg(state: ServeState, collection: str, point_id: str, px: int) -> bytes:
    """A JPEG of the point's image, fitting in px × px.

    Raises:
        HTTPException: 404 for an unknown collection or point, or when none of its files can be read any more.
    """
    size = thumb_size(px)
    pid = parse_point_id(point_id)
    payload = state.point_payload(collection, pid)  # 404s first: unknown ids never reach the cache
    key = (collection, pid, size)
    cached = state.thumbs.get(key)
    if cached is not None:
        return bytes(cached)
    data = _render(point_files(payload), size)
    state.thumbs.put(key, data)
    return data


def _render(paths: list[str], size: int) -> bytes:
    reason = "the point records no file"
    for path in paths:
        if not is_regular_file(path):
            reason = "its file is gone (moved or deleted since ingest)"
            continue
        try:
            return image_thumbnail(path, size, limits=_LIMITS)
        except ImageDecodeError as e:
            reason = f"its file cannot be decoded: {e}"
    raise HTTPException(404, f"no thumbnail: {reason}")
