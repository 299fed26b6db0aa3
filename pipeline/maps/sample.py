"""Which points a map draws: every point that has the vector, or a seeded sample of them beyond a size; read with
their vectors and payloads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.store import VectorSpec, VectorStore

READ_BATCH = 1000


@dataclass(frozen=True)
class SampledPoints:
    """The points to draw, in point-id order: ids, (N, D) vectors and payloads; `total` points had the vector."""

    ids: tuple[str, ...]
    vectors: np.ndarray
    payloads: tuple[dict[str, Any], ...]
    total: int


def ids_with_vector(store: VectorStore, collection: str, vector: str) -> list[str]:
    """Sorted ids of the points that have `vector` (not recorded as missing it: no face found), read without vectors."""
    ids = []
    for point_id, _, payload in store.scroll(collection, None, batch=READ_BATCH):
        if vector not in (payload.get("missing_vectors") or ()):
            ids.append(point_id)
    return sorted(ids)


def choose(ids: Sequence[str], cap: int, seed: int) -> list[str]:
    """All ids when there are at most `cap`, else `cap` of them drawn without replacement by `seed` (same ids, cap
    and seed: same choice), in their given order."""
    if len(ids) <= cap:
        return list(ids)
    picked = np.sort(np.random.default_rng(seed).choice(len(ids), size=cap, replace=False))
    return [ids[i] for i in picked]


def read_sample(
    store: VectorStore, collection: str, spec: VectorSpec, cap: int, seed: int, progress: bool = False
) -> SampledPoints:
    """Up to `cap` points of `collection` that have the named vector `spec`, chosen by `choose`, with their vectors
    and payloads (a point whose vector is gone by the time it is read is left out)."""
    ids = ids_with_vector(store, collection, spec.name)
    chosen = choose(ids, cap, seed)
    kept: list[str] = []
    vectors: list[np.ndarray] = []
    payloads: list[dict[str, Any]] = []
    starts = range(0, len(chosen), READ_BATCH)
    for start in tqdm(starts, desc="reading vectors", unit="page", disable=not progress):
        batch = chosen[start : start + READ_BATCH]
        found = store.get_points(collection, batch, spec.name)
        for point_id in batch:
            vector, payload = found.get(point_id, (None, {}))
            if vector is not None:
                kept.append(point_id)
                vectors.append(np.asarray(vector, dtype=np.float32))
                payloads.append(payload)
    stacked = np.stack(vectors) if vectors else np.zeros((0, spec.dim), dtype=np.float32)  # (N, D)
    return SampledPoints(tuple(kept), stacked, tuple(payloads), len(ids))
