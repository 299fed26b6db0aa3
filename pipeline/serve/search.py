"""Search a collection from an uploaded image or from an indexed point, as the CLI's `query` does: an image whose
bytes are indexed uses its stored vector, any other is embedded by the collection's own encoder (kept warm)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from starlette.exceptions import HTTPException

from pipeline.core.errors import ImageDecodeError, LookalikeError
from pipeline.core.images import DecodeLimits, decode_bytes
from pipeline.core.records import Hit
from pipeline.encoders.base import EncoderSpec, as_text_encoder
from pipeline.serve.state import SearchVector, ServeState, parse_point_id
from pipeline.store import point_id_for, where_filter

DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class SearchRequest:
    """What to search: the collection, how many results, payload filters (exact match), which encoder's vectors."""

    collection: str
    k: int = 10
    label: str | None = None
    group: str | None = None
    encoder: str | None = None

    def where(self) -> dict[str, str | int]:
        """The payload filter, as `lookalike query --where` builds it (labels and groups are stored as text)."""
        return {key: value for key, value in (("label", self.label), ("group", self.group)) if value}


@dataclass(frozen=True)
class SearchQuery:
    """What was searched from: an upload (`name` is its file name), an indexed point, or a text (`name` is the text);
    `point_id` is set when the query is an indexed point (an upload whose bytes are indexed too)."""

    kind: Literal["upload", "point", "text"]
    name: str
    point_id: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search, best first, and what it took."""

    request: SearchRequest
    encoder: str
    query: SearchQuery
    hits: tuple[Hit, ...]
    seconds: float


def search_upload(
    state: ServeState, request: SearchRequest, data: bytes, name: str, limits: DecodeLimits = DEFAULT_LIMITS
) -> SearchResult:
    """Search from the bytes of an uploaded image.

    Raises:
        HTTPException: 404 unknown collection; 415 not a decodable image; 422 the encoder could not embed it (no
            face found).
        LookalikeError: several vectors and no encoder chosen; EncoderVersionError: the encoder changed.
    """
    start = time.perf_counter()
    vector = state.search_vector(request.collection, request.encoder)
    point_id = point_id_for(hashlib.sha256(data).hexdigest())
    with state.engine() as store:
        stored = store.get_vectors(request.collection, [point_id], vector.spec.name).get(point_id)
    query = SearchQuery("upload", name, point_id if stored is not None else None)
    if stored is None:
        stored = _embed(state, vector, data, limits)
    return SearchResult(request, vector.encoder, query, _top_k(state, vector, request, stored), _since(start))


def _embed(state: ServeState, vector: SearchVector, data: bytes, limits: DecodeLimits) -> np.ndarray:
    try:
        image = decode_bytes(data, limits)
    except ImageDecodeError as e:
        raise HTTPException(415, f"the upload is not an image lookalike can read: {e}") from None
    with state.engine():
        encoder = state.encoder(vector)
        batch = encoder.encode([encoder.prepare(image)])
    if not batch.ok[0]:
        raise HTTPException(422, f"{vector.encoder} could not embed the upload: {batch.notes[0] or 'no vector'}")
    return np.asarray(batch.vectors[0])


def search_point(state: ServeState, request: SearchRequest, point_id: str) -> SearchResult:
    """Search from an indexed point's stored vector (click a result to search from it).

    Raises:
        HTTPException: 404 unknown collection, malformed id, or a point that is not stored (or has no such vector).
    """
    start = time.perf_counter()
    pid = parse_point_id(point_id)
    vector = state.search_vector(request.collection, request.encoder)
    with state.engine() as store:
        found = store.get_points(request.collection, [pid], vector.spec.name).get(pid)
    if found is None or found[0] is None:
        raise HTTPException(404, f"no point {pid} with a {vector.encoder} vector in collection {request.collection!r}")
    name = str(found[1].get("path", pid))
    hits = _top_k(state, vector, request, found[0])
    return SearchResult(request, vector.encoder, SearchQuery("point", name, pid), hits, _since(start))


def search_text(state: ServeState, request: SearchRequest, text: str) -> SearchResult:
    """Search images from a text, through the text tower of the CLIP model that filled the collection (kept warm).

    Raises:
        HTTPException: 404 unknown collection; 422 an empty text.
        LookalikeError: the collection's encoder has no text tower (only CLIP encoders have one).
    """
    start = time.perf_counter()
    if not text.strip():
        raise HTTPException(422, "text: empty; describe the image to find, e.g. 'a red car'")
    vector = state.search_vector(request.collection, request.encoder)
    with state.engine():
        tower = as_text_encoder(state.encoder(vector))
        query = np.asarray(tower.encode_text([text])[0])  # (D,)
    hits = _top_k(state, vector, request, query)
    return SearchResult(request, vector.encoder, SearchQuery("text", text), hits, _since(start))


def has_text_tower(encoder_spec: str) -> bool:
    """Whether an encoder spec names a family with a text tower (CLIP), without building it: for showing a text box."""
    try:
        return EncoderSpec.parse(encoder_spec).family == "clip"
    except LookalikeError:
        return False


def _top_k(state: ServeState, vector: SearchVector, request: SearchRequest, query: np.ndarray) -> tuple[Hit, ...]:
    with state.engine() as store:
        hits = store.query(request.collection, vector.spec, query, request.k, where_filter(request.where()))
    return tuple(hits[0])


def _since(start: float) -> float:
    return time.perf_counter() - start


def thumb_url(collection: str, point_id: str, px: int = 160) -> str:
    return f"/thumb/{quote(collection, safe='')}/{point_id}?px={px}"


def hit_json(collection: str, hit: Hit) -> dict[str, Any]:
    """One result as the API returns it."""
    payload = hit.payload
    return {
        "rank": hit.rank,
        "score": hit.score,
        "point_id": hit.point_id,
        "path": payload.get("path"),
        "label": payload.get("label"),
        "group": payload.get("group"),
        "thumb": thumb_url(collection, hit.point_id),
    }


def result_json(result: SearchResult) -> dict[str, Any]:
    """A search as the API returns it."""
    request, query = result.request, result.query
    return {
        "collection": request.collection,
        "encoder": result.encoder,
        "k": request.k,
        "where": request.where(),
        "query": {"kind": query.kind, "name": query.name, "point_id": query.point_id, "indexed": bool(query.point_id)},
        "hits": [hit_json(request.collection, h) for h in result.hits],
        "ms": round(result.seconds * 1000, 2),
    }
