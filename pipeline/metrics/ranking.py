"""Pure, vectorised ranking and retrieval metrics over numpy arrays (`score`: higher = more similar).

Verification metrics live in `pipeline.metrics.pairs`, copy-detection metrics in `pipeline.metrics.copies`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def hit_matrix(
    query_labels: Sequence[str],
    ranked_labels: Sequence[Sequence[str | None]],
    k: int,
    ranked_scores: Sequence[Sequence[float]] | None = None,
) -> np.ndarray:
    """Mark which ranked results share the query's label.

    Args:
        query_labels: (Q,) label of each query.
        ranked_labels: per query, the labels of its results, best first (any length).
        k: number of ranks to keep.
        ranked_scores: per query, the results' scores; when given, ties are broken pessimistically: among results
            of equal score, the ones with another label rank first (so a tie at rank 1 is a miss, whatever order
            the engine returned them in). Ties that continue beyond the results given are not seen.

    Returns:
        (Q, k) bool, True where the label at that rank equals the query's; short rankings pad with False.
    """
    out = np.zeros((len(query_labels), k), dtype=bool)
    for i, (label, ranked) in enumerate(zip(query_labels, ranked_labels, strict=True)):
        hits = [r == label for r in ranked]
        if ranked_scores is not None:
            scores = list(ranked_scores[i])
            hits = [hits[j] for j in sorted(range(len(hits)), key=lambda j: (-scores[j], hits[j]))]
        row = np.array(hits[:k], dtype=bool)
        out[i, : row.size] = row
    return out


def precision_at_1(hits: np.ndarray) -> float:
    """Fraction of queries whose rank-1 result is relevant.

    Args:
        hits: (Q, k) bool with k ≥ 1, as from `hit_matrix`.

    Returns:
        The fraction in [0, 1]; 0.0 when there are no queries.
    """
    return float(hits[:, 0].mean()) if hits.shape[0] else 0.0


def hit_rate_at_k(hits: np.ndarray, k: int) -> float:
    """Fraction of queries with at least one relevant result in the top k (same quantity as `recall_at_k`).

    Args:
        hits: (Q, K) bool, as from `hit_matrix`.
        k: cut-off; ranks beyond K count as misses.

    Returns:
        The fraction in [0, 1]; 0.0 when there are no queries.
    """
    return float(hits[:, :k].any(axis=1).mean()) if hits.shape[0] else 0.0


def mean_reciprocal_rank(hits: np.ndarray) -> float:
    """Mean of 1/rank of the first relevant result, 0 for a query with none in its ranking.

    Args:
        hits: (Q, K) bool, as from `hit_matrix`.

    Returns:
        MRR@K in [0, 1]; 0.0 when there are no queries.
    """
    if not hits.shape[0]:
        return 0.0
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)  # (Q,)
    return float(np.mean(1.0 / first))


def rank_of_answer(scores: npt.ArrayLike, answer: npt.ArrayLike) -> np.ndarray:
    """1-based rank of each query's true candidate among all its candidates.

    Ties are counted pessimistically: the true candidate ranks after every other candidate with an
    equal score, so a constant scorer gets rank C, never 1. NaN scores rank last: a NaN on another
    candidate never outranks the answer, and a NaN on the answer gives rank C.

    Args:
        scores: (Q, C) float, higher = more similar; C ≥ 1.
        answer: (Q,) int, column of the true candidate for each query, in [0, C).

    Returns:
        (Q,) int64 ranks in [1, C]; empty when Q == 0.

    Raises:
        ValueError: on wrong shapes, no candidates, or an answer index out of range.
    """
    s = np.asarray(scores, dtype=np.float64)  # (Q, C)
    a = np.asarray(answer)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"rank_of_answer: scores must be (Q, C) with C ≥ 1, got shape {s.shape}")
    if a.shape != (s.shape[0],) or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"rank_of_answer: answer must be ({s.shape[0]},) int, got shape {a.shape} {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= s.shape[1]):
        raise ValueError(f"rank_of_answer: answer indices must lie in [0, {s.shape[1]}), got {a.min()}..{a.max()}")
    true = s[np.arange(s.shape[0]), a.astype(np.intp)][:, None]  # (Q, 1)
    ranks = (s >= true).sum(axis=1)  # (Q,) counts the answer itself; NaN compares False
    return np.where(np.isnan(true[:, 0]), s.shape[1], ranks).astype(np.int64)


def _check_ranks(ranks: npt.ArrayLike, caller: str) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"{caller}: ranks must be a non-empty (Q,) array, got shape {r.shape}")
    if not np.issubdtype(r.dtype, np.integer) or r.min() < 1:
        raise ValueError(f"{caller}: ranks must be 1-based integers (as from rank_of_answer), got {r.dtype} {r.min()}")
    return r


def top_k_accuracy(ranks: npt.ArrayLike, k: int) -> float:
    """Fraction of queries whose true candidate ranks within the top k.

    Args:
        ranks: (Q,) 1-based int ranks, as from `rank_of_answer`.
        k: cut-off, ≥ 1.

    Returns:
        The fraction in [0, 1].

    Raises:
        ValueError: when k < 1, ranks are empty (a mean over no queries is undefined), or not 1-based ints.
    """
    if k < 1:
        raise ValueError(f"top_k_accuracy: k must be ≥ 1, got {k}")
    return float(np.mean(_check_ranks(ranks, "top_k_accuracy") <= k))


def mrr(ranks: npt.ArrayLike) -> float:
    """Mean reciprocal rank of the true candidate.

    Args:
        ranks: (Q,) 1-based int ranks, as from `rank_of_answer`.

    Returns:
        Mean of 1/rank, in (0, 1].

    Raises:
        ValueError: when ranks are empty or not 1-based ints.
    """
    return float(np.mean(1.0 / _check_ranks(ranks, "mrr")))


def _check_relevance(ranked_relevance: npt.ArrayLike, caller: str) -> np.ndarray:
    rel = np.asarray(ranked_relevance)
    if rel.ndim != 2 or rel.shape[0] == 0 or rel.dtype != np.bool_:
        raise ValueError(f"{caller}: ranked_relevance must be non-empty (Q, K) bool, got {rel.shape} {rel.dtype}")
    return rel


def map_at_r(ranked_relevance: npt.ArrayLike, n_relevant: npt.ArrayLike) -> float:
    """MAP@R (Musgrave et al. 2020, "A Metric Learning Reality Check"), averaged over queries.

    For a query with R relevant items: (1/R) * sum over ranks i ≤ R of P(i), where P(i) is the
    precision at rank i if the item at rank i is relevant and 0 otherwise.

    Args:
        ranked_relevance: (Q, K) bool, relevance of each query's results, best first (the query itself excluded).
        n_relevant: (Q,) int, R per query: how many relevant items exist in the whole database, ≥ 1.

    Returns:
        MAP@R in [0, 1]. K ≥ max R is expected; when K < R the ranks K+1..R count as not relevant, so
        the result is a lower bound of the true MAP@R.

    Raises:
        ValueError: on wrong shapes, empty input, R < 1 (drop queries with no relevant item first),
            or a row with more relevant results than its R.
    """
    rel = _check_relevance(ranked_relevance, "map_at_r")
    r = np.asarray(n_relevant)
    if r.shape != (rel.shape[0],) or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"map_at_r: n_relevant must be ({rel.shape[0]},) int, got {r.shape} {r.dtype}")
    if r.min() < 1:
        raise ValueError("map_at_r: every query needs n_relevant ≥ 1; drop queries with no relevant item first")
    if (rel.sum(axis=1) > r).any():
        raise ValueError("map_at_r: a row has more relevant results than its n_relevant; check the counts")
    positions = np.arange(1, rel.shape[1] + 1)  # (K,) 1-based rank
    counted = rel & (positions[None, :] <= r[:, None])  # (Q, K) relevant and within the first R ranks
    precision = np.cumsum(counted, axis=1) / positions  # (Q, K) precision among the first R
    return float(np.mean((precision * counted).sum(axis=1) / r))


def recall_at_k(ranked_relevance: npt.ArrayLike, k: int) -> float:
    """Recall@k in the metric-learning sense: the fraction of queries with ≥ 1 relevant result in the top k.

    This is not information-retrieval recall (the share of a query's relevant items retrieved); it is the
    "Recall@K" reported for CUB / Cars196 / SOP, and equals `hit_rate_at_k`.

    Args:
        ranked_relevance: (Q, K) bool, relevance of each query's results, best first.
        k: cut-off, ≥ 1; when k > K only the K given ranks are seen.

    Returns:
        The fraction in [0, 1].

    Raises:
        ValueError: when k < 1 or the input is empty or not (Q, K) bool.
    """
    if k < 1:
        raise ValueError(f"recall_at_k: k must be ≥ 1, got {k}")
    rel = _check_relevance(ranked_relevance, "recall_at_k")
    return float(rel[:, :k].any(axis=1).mean())


def per_label_mean(labels: Sequence[str], values: npt.ArrayLike) -> float:
    """Macro average: the mean over labels of the mean of `values` within each label.

    Args:
        labels: (Q,) label of each query.
        values: (Q,) per-query value, e.g. rank-1 correctness.

    Returns:
        Each label weighs the same, however many queries it has; 0.0 for no queries.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    sums = np.bincount(inverse, weights=v)
    counts = np.bincount(inverse)
    return float(np.mean(sums / counts))
