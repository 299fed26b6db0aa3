"""Query and rank: resolve what the user asked about to vectors, then top-k through the store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.errors import ImageDecodeError, LookalikeError
from pipeline.core.files import sha256_file
from pipeline.core.images import load_rgb
from pipeline.core.records import Hit
from pipeline.encoders.base import Encoder, as_text_encoder, encoder_version
from pipeline.store import VectorSpec, VectorStore, point_id_for, where_filter


@dataclass(frozen=True)
class QueryConfig:
    """What to ask the store for."""

    collection: str
    k: int = 10
    where: Mapping[str, str | int] = field(default_factory=dict)
    exclude_self: bool = False


@dataclass(frozen=True)
class ResolvedQuery:
    """A query string turned into a vector; `point_id` is set when the image is already indexed."""

    query: str
    vector: np.ndarray | None
    point_id: str | None = None
    error: str = ""


@dataclass(frozen=True)
class QueryResult:
    """Hits for one query, or the reason there are none."""

    query: str
    hits: tuple[Hit, ...] = ()
    error: str = ""


def _as_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _lookup(store: VectorStore, collection: str, spec: VectorSpec, query: str) -> ResolvedQuery | None:
    """A stored vector for a point id, a file whose content is indexed, or an indexed path."""
    point_id = _as_uuid(query)
    path = Path(query)
    if point_id is None and path.is_file():
        point_id = point_id_for(sha256_file(query))
    if point_id is None:
        ids = store.find_ids(collection, "path", str(path.resolve()), limit=1)
        point_id = ids[0] if ids else None
    if point_id is None:
        return None
    found = store.get_points(collection, [point_id], spec.name).get(point_id)
    if found is None or found[0] is None:
        return None
    return ResolvedQuery(query, found[0], point_id)


def _embed_file(query: str, encoder: Encoder) -> ResolvedQuery:
    if not Path(query).is_file():
        return ResolvedQuery(query, None, error="not a file, an indexed path or a point id")
    try:
        image = load_rgb(query)
    except ImageDecodeError as e:
        return ResolvedQuery(query, None, error=str(e))
    batch = encoder.encode([encoder.prepare(image)])
    if not batch.ok[0]:
        return ResolvedQuery(query, None, error=batch.notes[0] or "the encoder could not embed it")
    return ResolvedQuery(query, batch.vectors[0])


def resolve_queries(
    queries: Sequence[str], store: VectorStore, collection: str, spec: VectorSpec, encoder: Callable[[], Encoder]
) -> list[ResolvedQuery]:
    """Vectors for each query: stored ones where the image is indexed, else embedded now.

    `encoder` is a factory, called at most once and only if some query is not indexed; the encoder it builds
    must be the version the collection was made with (stored vectors compare with each other regardless).

    Raises:
        EncoderVersionError: a query needs embedding and the encoder's version differs from the collection's.
    """
    resolved: list[ResolvedQuery] = []
    built: list[Encoder] = []
    for query in queries:
        hit = _lookup(store, collection, spec, query)
        if hit is None:
            if not built:
                built.append(encoder())
                store.check_encoder_version(collection, spec.name, built[0].name, encoder_version(built[0]))
            hit = _embed_file(query, built[0])
        resolved.append(hit)
    return resolved


def run_queries(
    resolved: Sequence[ResolvedQuery], store: VectorStore, spec: VectorSpec, config: QueryConfig
) -> list[QueryResult]:
    """Top-k for every resolved query in one batched request; errors are carried through."""
    good = [r for r in resolved if r.vector is not None]
    filters = [where_filter(config.where, [r.point_id] if config.exclude_self and r.point_id else ()) for r in good]
    vectors = [r.vector for r in good if r.vector is not None]
    hits = store.query(config.collection, spec, np.stack(vectors), config.k, filters) if vectors else []
    by_query = {id(r): tuple(h) for r, h in zip(good, hits, strict=True)}
    return [QueryResult(r.query, by_query.get(id(r), ()), r.error) for r in resolved]


def collection_vector(store: VectorStore, collection: str, encoder_spec: str | None) -> tuple[VectorSpec, str]:
    """The named vector to search and the encoder spec that fills it.

    Raises:
        LookalikeError: the collection holds several vectors and none was chosen, or not the one asked for.
    """
    specs = store.vector_specs(collection)
    encoders = store.encoder_specs(collection)
    if encoder_spec is None:
        if len(specs) != 1:
            raise LookalikeError(
                f"collection {collection!r} holds {', '.join(specs)}: choose one encoder, or several comma-separated "
                "to fuse them",
                setting="encoder",
            )
        name = next(iter(specs))
        return specs[name], encoders.get(name, name)
    for name, spec_text in encoders.items():
        if spec_text == encoder_spec and name in specs:
            return specs[name], spec_text
    have = ", ".join(encoders.values())
    raise LookalikeError(f"collection {collection!r} has no vectors from encoder {encoder_spec!r} (it has: {have})")


def resolve_texts(
    texts: Sequence[str], store: VectorStore, collection: str, spec: VectorSpec, encoder: Callable[[], Encoder]
) -> list[ResolvedQuery]:
    """Vectors for text queries, from the text tower of the encoder that filled `spec` (a blank text is an error of
    its own query, not of the run).

    Args:
        encoder: builds the encoder named in the collection's catalog; called once.

    Raises:
        LookalikeError: the encoder has no text tower (only CLIP encoders have one).
        EncoderVersionError: the encoder's version differs from the collection's.
    """
    built = encoder()
    tower = as_text_encoder(built)
    store.check_encoder_version(collection, spec.name, built.name, encoder_version(built))
    wanted = [t for t in texts if t.strip()]
    vectors = dict(zip(wanted, tower.encode_text(wanted), strict=True))  # (D,) per distinct text
    return [
        ResolvedQuery(t, vectors[t]) if t in vectors else ResolvedQuery(t, None, error="empty text query")
        for t in texts
    ]


def query_texts(
    texts: Sequence[str],
    store: VectorStore,
    config: QueryConfig,
    encoder_spec: str | None,
    make_encoder: Callable[[str], Encoder],
) -> list[QueryResult]:
    """`lookalike query --text`: top-k images for each text, through the text tower of the CLIP model that filled
    the collection (its spec is read from the collection's catalog, so the two towers are of one model).

    Args:
        encoder_spec: which encoder's vectors to search; None for the collection's only one.
        make_encoder: builds an encoder from its spec.

    Raises:
        LookalikeError: several encoders asked for (text queries search one), the collection lacks the encoder,
            or the encoder has no text tower.
        EncoderVersionError: the encoder's version differs from the collection's.
    """
    if encoder_spec and "," in encoder_spec:
        raise LookalikeError(
            f"text queries search one encoder's vectors, not a fusion ({encoder_spec!r}): choose the CLIP one",
            setting="encoder",
        )
    spec, spec_text = collection_vector(store, config.collection, encoder_spec)
    resolved = resolve_texts(texts, store, config.collection, spec, lambda: make_encoder(spec_text))
    return run_queries(resolved, store, spec, config)
