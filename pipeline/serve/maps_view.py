"""The map view: a collection's embedding map from `pipeline.maps` (the same map `lookalike map` draws), with
thumbnails and clicks served by this app (a click searches from the point). Maps are cached once laid out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pipeline.maps.build import EmbeddingMap, MapConfig, build_map
from pipeline.maps.page import map_fragment
from pipeline.serve.search import thumb_url
from pipeline.serve.state import ServeState

SERVE_SAMPLE = 5_000  # points drawn in the browser; beyond it a seeded random sample (the page says so)
METHODS = ("pca", "umap", "tsne")  # pca first: instant; umap/t-SNE take seconds to minutes the first time


def collection_map(state: ServeState, collection: str, method: str, color_by: str = "label") -> EmbeddingMap:
    """The collection's map laid out by `method`, built on first request and cached.

    Raises:
        HTTPException: 404 for an unknown collection.
        LookalikeError: an unknown method, multivectors, too few points, or a layout library missing.
    """
    state.require_collection(collection)
    key = (collection, method, color_by)
    cached = state.maps.get(key)
    if cached is not None:
        return cached
    config = MapConfig(method=method, color_by=color_by, sample=SERVE_SAMPLE)
    with state.engine() as store:
        emap = build_map(store, collection, None, config)
    state.maps.put(key, emap)
    return emap


def map_fragment_html(emap: EmbeddingMap) -> str:
    """The interactive map as a page fragment: thumbnails from /thumb by point id, a click searches from the point."""
    ids = {p.path: p.point_id for p in emap.points if p.path}
    return map_fragment(
        emap,
        thumb_url=lambda path: thumb_url(emap.collection, ids[path], 128),
        open_url=lambda path: "/?" + urlencode({"collection": emap.collection, "id": ids[path]}),
    )


def map_json(emap: EmbeddingMap) -> dict[str, Any]:
    """The map as the API returns it: what was drawn and every point's position, label and thumbnail URL."""
    return {
        "collection": emap.collection,
        "encoder": emap.encoder,
        "method": emap.method.value,
        "color_by": emap.color_by,
        "total": emap.total,
        "sampled": emap.sampled,
        "points": [
            {
                "point_id": p.point_id,
                "path": p.path,
                "label": p.label,
                "x": p.x,
                "y": p.y,
                "thumb": thumb_url(emap.collection, p.point_id, 128),
            }
            for p in emap.points
        ],
    }
