"""Query several encoders' named vectors of one collection and fuse their results by point id.

For each query and encoder, the top `k × POOL_FACTOR` hits form a candidate pool; the union of the pools is
then scored exactly by every encoder (candidate-restricted queries, NaN where a point or the query has no
vector for it) and fused with `pipeline.search.fusion.fuse_scores`. The per-encoder normalisation comes from the
collection itself: mean and standard deviation of the similarities between a sample of its stored points,
computed client-side with Qdrant's scoring rules (`pipeline.store.scoring`; no training pairs are needed at query time,
and `submit` fits a task-specific calibration instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.core.records import Hit
from pipeline.encoders.base import Encoder
from pipeline.search.fusion import fuse_scores, parse_encoder_list, parse_weights
from pipeline.search.query import (
    QueryConfig,
    QueryResult,
    ResolvedQuery,
    collection_vector,
    resolve_queries,
    run_queries,
)
from pipeline.store import VectorSpec, VectorStore, only_ids
from pipeline.store.scoring import score_matrix

POOL_FACTOR = 5  # each encoder contributes its top k × POOL_FACTOR (at least MIN_POOL) to the fused pool
MIN_POOL = 50
NORMALISATION_SAMPLE = 128  # stored points whose pairwise similarities give each encoder's mean and std


@dataclass(frozen=True)
class FusedVector:
    """One encoder of a fused query: the named vector it searches and the encoder spec that fills it."""

    spec: VectorSpec
    encoder: str


@dataclass(frozen=True)
class _Pool:
    """One query's candidate points (union over encoders) with their payloads, and per-encoder errors."""

    ids: tuple[str, ...]
    payloads: Mapping[str, dict[str, Any]]
    errors: tuple[str, ...]


def query_images(
    queries: Sequence[str],
    store: VectorStore,
    config: QueryConfig,
    encoders: str | None,
    weights: str | None,
    make_encoder: Callable[[str], Encoder],
) -> list[QueryResult]:
    """`lookalike query`: search one encoder's vectors, or fuse several (`encoders` = "dlib,phash:8").

    Args:
        encoders: None (the collection's only encoder), one spec, or comma-separated specs to fuse.
        weights: comma-separated fusion weights, one per encoder; None = equal.
        make_encoder: builds an encoder from its spec, for queries that are not indexed.

    Raises:
        LookalikeError: bad encoder list or weights, or the collection lacks one of the encoders.
    """
    specs = parse_encoder_list(encoders) if encoders else ()
    if len(specs) > 1:
        vectors = collection_vectors(store, config.collection, specs)
        return run_fused_queries(queries, store, vectors, make_encoder, config, parse_weights(weights, len(specs)))
    parse_weights(weights, 1)  # refuses weights for one encoder
    spec, encoder_spec = collection_vector(store, config.collection, specs[0] if specs else None)
    resolved = resolve_queries(queries, store, config.collection, spec, _bind(make_encoder, encoder_spec))
    return run_queries(resolved, store, spec, config)


def collection_vectors(store: VectorStore, collection: str, encoders: Sequence[str]) -> list[FusedVector]:
    """The named vector of each encoder spec in a multi-vector collection.

    Raises:
        LookalikeError: the collection has no vectors from one of the encoders.
    """
    return [FusedVector(*collection_vector(store, collection, text)) for text in encoders]


def collection_normalisation(
    store: VectorStore, collection: str, specs: Sequence[VectorSpec], sample: int = NORMALISATION_SAMPLE
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per named vector, the mean and std of similarities between up to `sample` stored points (self-pairs
    left out); (0, 1) for a vector with fewer than two points, std 1 for constant similarities."""
    means, stds = [], []
    for spec in specs:
        scores = _sample_scores(store, collection, spec, sample)
        means.append(float(scores.mean()) if scores.size else 0.0)
        std = float(scores.std()) if scores.size > 1 else 1.0
        stds.append(std if std > 1e-12 else 1.0)
    return tuple(means), tuple(stds)


def _sample_scores(store: VectorStore, collection: str, spec: VectorSpec, sample: int) -> np.ndarray:
    """Similarities between up to `sample` stored points with this vector, self-pairs left out."""
    vectors: list[np.ndarray] = []
    for _, vector, _ in store.scroll(collection, spec.name, batch=sample):
        if vector is not None:
            vectors.append(vector)
        if len(vectors) >= sample:
            break
    if len(vectors) < 2:
        return np.empty(0)
    stacked = np.stack(vectors)
    scores = score_matrix(stacked, stacked, spec)  # (N, N)
    return scores[~np.eye(len(vectors), dtype=bool)]


def run_fused_queries(
    queries: Sequence[str],
    store: VectorStore,
    vectors: Sequence[FusedVector],
    encoder: Callable[[str], Encoder],
    config: QueryConfig,
    weights: Sequence[float],
) -> list[QueryResult]:
    """Top-k for each query by the fused score of several encoders (higher is better; a z-score scale).

    Args:
        queries: image files, indexed paths or point ids.
        vectors: the encoders to fuse, as from `collection_vectors`.
        encoder: builds an encoder from its spec; called only for queries that are not indexed.
        config: collection, k, payload filter and exclude_self, applied to every encoder's search.
        weights: one per encoder, summing to 1; re-normalised per point over the encoders that scored it.

    Returns:
        One result per query; an error only when no encoder could resolve the query.
    """
    resolved = [resolve_queries(queries, store, config.collection, v.spec, _bind(encoder, v.encoder)) for v in vectors]
    wide = replace(config, k=max(config.k * POOL_FACTOR, MIN_POOL))
    first = [run_queries(r, store, v.spec, wide) for r, v in zip(resolved, vectors, strict=True)]
    pools = [_pool(i, first, vectors) for i in range(len(queries))]
    exact = [_exact_scores(store, config.collection, v.spec, r, pools) for r, v in zip(resolved, vectors, strict=True)]
    mean, std = collection_normalisation(store, config.collection, [v.spec for v in vectors])
    results = []
    for i, query in enumerate(queries):
        pool = pools[i]
        if not pool.ids:
            results.append(QueryResult(query, (), "; ".join(pool.errors)))
            continue
        stack = np.array([[[layer[i].get(pid, np.nan) for pid in pool.ids]] for layer in exact])  # (E, 1, U)
        fused = fuse_scores(stack, mean, std, weights)[0]  # (U,)
        order = np.argsort(-np.nan_to_num(fused, nan=-np.inf), kind="stable")[: config.k]
        hits = tuple(
            Hit(rank, float(fused[j]), pool.ids[j], pool.payloads[pool.ids[j]]) for rank, j in enumerate(order, 1)
        )
        results.append(QueryResult(query, hits))
    return results


def _bind(encoder: Callable[[str], Encoder], text: str) -> Callable[[], Encoder]:
    return lambda: encoder(text)


def _pool(i: int, first: Sequence[Sequence[QueryResult]], vectors: Sequence[FusedVector]) -> _Pool:
    payloads: dict[str, dict[str, Any]] = {}
    errors = []
    for results, vector in zip(first, vectors, strict=True):
        result = results[i]
        if result.error:
            errors.append(f"{vector.encoder}: {result.error}")
        for hit in result.hits:
            payloads.setdefault(hit.point_id, hit.payload)
    return _Pool(tuple(payloads), payloads, tuple(errors))


def _exact_scores(
    store: VectorStore, collection: str, spec: VectorSpec, resolved: Sequence[ResolvedQuery], pools: Sequence[_Pool]
) -> list[dict[str, float]]:
    """Per query, this encoder's similarity to every point of the query's pool that has its vector."""
    rows = [i for i, r in enumerate(resolved) if r.vector is not None and pools[i].ids]
    out: list[dict[str, float]] = [{} for _ in resolved]
    if not rows:
        return out
    query = np.stack([v for i in rows if (v := resolved[i].vector) is not None])  # (R, D)
    limit = max(len(pools[i].ids) for i in rows)
    hits = store.query(collection, spec, query, limit, [only_ids(list(pools[i].ids)) for i in rows])
    for i, row in zip(rows, hits, strict=True):
        out[i] = {h.point_id: h.score for h in row}
    return out
