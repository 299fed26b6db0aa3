"""Pure, vectorised copy-detection metrics (DISC21 / Image Similarity Challenge) over predicted pairs.

`score` is higher = more confident the pair is a copy. Ties are broken pessimistically, as in the
challenge's reference scorer: among equal scores the wrong predictions come first, so giving every
prediction the same score cannot inflate the result.
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
