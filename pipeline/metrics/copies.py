"""Pure, vectorised copy-detection metrics (DISC21 / Image Similarity Challenge) over predicted pairs.

`score` is higher = more confident the pair is a copy. Ties are broken pessimistically everywhere, as in the
challenge's reference scorer: among equal scores the wrong predictions come first (µAP, recall at precision) and a
wrong reference scoring the same as the true one ranks above it (ranks, recall@k), so giving every prediction the
same score cannot inflate the result, and the engine's order among equal scores does not change it.

Queries with no true reference (DISC21's distractor queries) have no ground-truth pair, but their predictions are
pooled like any other: every one is a false positive that lowers µAP and recall at precision, as in DISC21.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.metrics.pairs import check_scored_pairs


def _precision_recall(
    scores: npt.ArrayLike, is_true: npt.ArrayLike, n_ground_truth: int, caller: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall after each prediction, in pessimistic descending-score order.

    Returns:
        (P,) precision, (P,) recall (over all ground truth), (P,) the sorted scores.
    """
    s, y = check_scored_pairs(scores, is_true, caller, allow_empty=True)
    if n_ground_truth < 1:
        raise ValueError(f"{caller}: n_ground_truth must be ≥ 1, got {n_ground_truth}")
    if y.sum() > n_ground_truth:
        raise ValueError(
            f"{caller}: {int(y.sum())} true predictions but only {n_ground_truth} ground-truth pairs; "
            "remove duplicate (query, reference) predictions"
        )
    order = np.lexsort((y, -s))  # by descending score, then False before True within a tie
    s, y = s[order], y[order]
    found = np.cumsum(y)  # (P,) true predictions so far
    return found / np.arange(1, y.size + 1), found / n_ground_truth, s


def micro_average_precision(scores: npt.ArrayLike, is_true: npt.ArrayLike, n_ground_truth: int) -> float:
    """Micro-average precision (µAP) over all predicted pairs of all queries, as in DISC21.

    The predictions are pooled and sorted by score; AP = sum over predictions of (recall step) * precision,
    with recall normalised by the number of ground-truth pairs, so ground truth never predicted lowers µAP.
    With distinct scores and every ground truth predicted this equals `sklearn.metrics.average_precision_score`.

    Args:
        scores: (P,) float confidence of each predicted (query, reference) pair.
        is_true: (P,) bool, whether that pair is in the ground truth.
        n_ground_truth: number of ground-truth pairs, ≥ 1 and ≥ is_true.sum().

    Returns:
        µAP in [0, 1]; 0.0 when there are no predictions.

    Raises:
        ValueError: on invalid input, n_ground_truth < 1, or more true predictions than ground truth.
    """
    precision, recall, _ = _precision_recall(scores, is_true, n_ground_truth, "micro_average_precision")
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def recall_at_precision(
    scores: npt.ArrayLike, is_true: npt.ArrayLike, n_ground_truth: int, precision: float = 0.9
) -> tuple[float, float]:
    """Highest recall at which precision is at least `precision` (DISC21 reports it at 0.9).

    Args:
        scores: (P,) float confidence of each predicted pair.
        is_true: (P,) bool, whether that pair is in the ground truth.
        n_ground_truth: number of ground-truth pairs, ≥ 1.
        precision: required precision in (0, 1].

    Returns:
        (recall, threshold): accepting `score >= threshold` reaches that recall and precision. When no
        operating point reaches the precision (or there are no predictions), (0.0, inf).

    Raises:
        ValueError: on invalid input or precision outside (0, 1].
    """
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"recall_at_precision: precision must lie in (0, 1], got {precision}")
    p, r, s = _precision_recall(scores, is_true, n_ground_truth, "recall_at_precision")
    valid = p >= precision
    if not valid.any():
        return 0.0, float("inf")
    # The first maximal recall is always the end of a tie group (wrong predictions sort first within a
    # tie), so `score >= s[i]` accepts exactly the predictions counted.
    i = int(np.argmax(np.where(valid, r, -1.0)))
    return float(r[i]), float(s[i])


def reference_ranks(scores: npt.ArrayLike, is_true: npt.ArrayLike) -> np.ndarray:
    """Pessimistic 1-based rank of each query's true reference among its predicted references.

    A wrong reference scoring the same as the true one ranks above it, whatever order the search engine returned
    them in: rank = 1 + the number of wrong predictions scoring ≥ the true one. Given each query's top K
    predictions, a rank below K is exact (a wrong reference left out scores below the true one); fetch one
    prediction more than the deepest rank you count.

    Args:
        scores: (Q, K) float, each query's predicted references' scores (any order); NaN pads short rows.
        is_true: (Q, K) bool, True on the query's true reference: at most one per row, never on a NaN.

    Returns:
        (Q,) int64 ranks in [1, K]; 0 where the true reference is not among the predictions.

    Raises:
        ValueError: on mismatched shapes, more than one true reference in a row, or a true one scored NaN.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_true)
    if s.ndim != 2 or y.shape != s.shape or y.dtype != np.bool_:
        raise ValueError(f"reference_ranks: need (Q, K) scores and bool is_true, got {s.shape} and {y.shape} {y.dtype}")
    if (y.sum(axis=1) > 1).any():
        raise ValueError("reference_ranks: a row has more than one true reference; each query has at most one")
    if np.isnan(s[y]).any():
        raise ValueError("reference_ranks: a true reference has a NaN score")
    true_score = np.where(y, s, -np.inf).max(axis=1, initial=-np.inf)  # (Q,)
    wrong_at_or_above = ((s >= true_score[:, None]) & ~y).sum(axis=1)  # (Q,) NaN padding compares False
    return np.where(y.any(axis=1), 1 + wrong_at_or_above, 0).astype(np.int64)


def copy_recall_at_k(scores: npt.ArrayLike, is_true: npt.ArrayLike, k: int = 1) -> float:
    """Share of copy queries whose true reference ranks within the top k, ties counted against it.

    With k = 1 a query counts only if its true reference scores strictly above every wrong prediction, so a
    constant scorer gets 0, not the luck of the engine's order. Pass each query's top K > k predictions.

    Args:
        scores: (Q, K) float, one row per copy query (a query with a true reference), NaN-padded.
        is_true: (Q, K) bool, True on the query's true reference.
        k: cut-off, ≥ 1.

    Returns:
        The share in [0, 1].

    Raises:
        ValueError: when k < 1, there are no queries, or on the input errors of `reference_ranks`.
    """
    if k < 1:
        raise ValueError(f"copy_recall_at_k: k must be ≥ 1, got {k}")
    ranks = reference_ranks(scores, is_true)
    if ranks.size == 0:
        raise ValueError("copy_recall_at_k: no queries (a mean over none is undefined)")
    return float(np.mean((ranks >= 1) & (ranks <= k)))
