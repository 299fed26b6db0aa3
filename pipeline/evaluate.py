"""Pure, vectorised metric functions over numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hit_matrix(query_labels: Sequence[str], ranked_labels: Sequence[Sequence[str | None]], k: int) -> np.ndarray:
    """(Q, k) bool: whether the label at each rank equals the query's label; short rankings pad with False."""
    out = np.zeros((len(query_labels), k), dtype=bool)
    for i, (label, ranked) in enumerate(zip(query_labels, ranked_labels, strict=True)):
        row = np.array([r == label for r in list(ranked)[:k]], dtype=bool)
        out[i, : row.size] = row
    return out


def precision_at_1(hits: np.ndarray) -> float:
    """Fraction of queries whose rank-1 result is relevant; `hits` is (Q, k) bool with k ≥ 1."""
    return float(hits[:, 0].mean()) if hits.shape[0] else 0.0


def hit_rate_at_k(hits: np.ndarray, k: int) -> float:
    """Fraction of queries with at least one relevant result in the top k (a.k.a. top-k accuracy)."""
    return float(hits[:, :k].any(axis=1).mean()) if hits.shape[0] else 0.0


def mean_reciprocal_rank(hits: np.ndarray) -> float:
    """Mean of 1/rank of the first relevant result (0 when none is in the ranking)."""
    if not hits.shape[0]:
        return 0.0
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    return float(np.mean(1.0 / first))
