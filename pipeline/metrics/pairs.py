"""Pure, vectorised verification metrics over scored pairs (`score`: higher = more similar).

A pair is predicted "same" when `score >= threshold`. Scores must be finite; NaN or ±inf raise ValueError,
since a similarity that is not a number is a bug upstream, not a judgement to rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class VerificationFolds:
    """Accuracy of k-fold verification, each fold's threshold chosen on the other folds.

    Attributes:
        folds: fold ids, ascending.
        accuracies: per fold, accuracy on that fold at its threshold.
        thresholds: per fold, the best-accuracy threshold on the other folds.
        mean: mean of the per-fold accuracies.
        std: population standard deviation (ddof=0) of the per-fold accuracies.
    """

    folds: tuple[int, ...]
    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]
    mean: float
    std: float

    @property
    def standard_error(self) -> float:
        """Standard error of the mean as the LFW protocol reports it: sample std (ddof=1) / sqrt(k)."""
        return float(np.std(self.accuracies, ddof=1) / np.sqrt(len(self.accuracies)))


def check_scored_pairs(
    scores: npt.ArrayLike, labels: npt.ArrayLike, caller: str, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert one score and one bool label per pair.

    Args:
        scores: (N,) finite float scores.
        labels: (N,) bool, or int 0/1.
        caller: function name for error messages.
        allow_empty: accept N == 0.

    Returns:
        (N,) float64 scores and (N,) bool labels.

    Raises:
        ValueError: on shape mismatch, empty input (unless allowed), non-finite scores or non-binary labels.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"{caller}: scores and labels must both be (N,), got {s.shape} and {y.shape}")
    if s.size == 0 and not allow_empty:
        raise ValueError(f"{caller}: no pairs given; the metric is undefined on empty input")
    if not np.isfinite(s).all():
        raise ValueError(f"{caller}: {int((~np.isfinite(s)).sum())} scores are NaN or infinite; fix them upstream")
    if y.dtype != np.bool_ and not (np.issubdtype(y.dtype, np.integer) and np.isin(y, (0, 1)).all()):
        raise ValueError(f"{caller}: labels must be bool or 0/1 ints, got dtype {y.dtype}")
    return s, y.astype(bool)


def _operating_points(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative counts at every distinct threshold, highest first.

    Returns:
        (M+1,) thresholds [inf, d_1 > d_2 > ... > d_M] over the M distinct scores, and (M+1,) int true and
        false accepts for `score >= threshold`; index 0 accepts nothing.
    """
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]  # (N,) by descending score
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # (M,) last index of each tie group
    tps = np.r_[0, np.cumsum(y)[ends]]
    fps = np.r_[0, np.cumsum(~y)[ends]]
    return np.r_[np.inf, s[ends]], tps, fps


def _both_classes(y: np.ndarray, caller: str) -> tuple[int, int]:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"{caller}: needs both same and different pairs, got {n_pos} same and {n_neg} different")
    return n_pos, n_neg


def roc_curve(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with one point per distinct score (no intermediate points dropped).

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine (same-identity) pair.

    Returns:
        fpr, tpr, thresholds, each (M+1,) for M distinct scores: point i predicts same for
        `score >= thresholds[i]`; thresholds[0] is +inf (accept nothing), then the scores descending.
        Matches `sklearn.metrics.roc_curve(same, scores, drop_intermediate=False)`.

    Raises:
        ValueError: on invalid input, or when either class is absent (a rate would divide by zero).
    """
    s, y = check_scored_pairs(scores, same, "roc_curve")
    n_pos, n_neg = _both_classes(y, "roc_curve")
    thresholds, tps, fps = _operating_points(s, y)
    return fps / n_neg, tps / n_pos, thresholds


def roc_auc(scores: npt.ArrayLike, same: npt.ArrayLike) -> float:
    """Area under the ROC curve; a tie between a genuine and an impostor pair counts one half.

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine pair.

    Returns:
        AUC in [0, 1].

    Raises:
        ValueError: on invalid input or when either class is absent.
    """
    fpr, tpr, _ = roc_curve(scores, same)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tar_at_far(scores: npt.ArrayLike, same: npt.ArrayLike, far: float = 1e-3) -> tuple[float, float]:
    """Largest true-accept rate whose false-accept rate is at most `far`.

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine pair.
        far: target false-accept rate in (0, 1].

    Returns:
        (tar, threshold): predict same for `score >= threshold`. Of the thresholds reaching that TAR the
        highest is returned; it is +inf (accept nothing) when tar is 0.0.

    Raises:
        ValueError: on invalid input, a missing class, far outside (0, 1], or too few impostor pairs to
            resolve the target: with n negatives the smallest non-zero FAR is 1/n, so far * n < 1 is
            refused rather than silently reporting TAR at FAR = 0.
    """
    if not 0.0 < far <= 1.0:
        raise ValueError(f"tar_at_far: far must lie in (0, 1], got {far}")
    s, y = check_scored_pairs(scores, same, "tar_at_far")
    n_pos, n_neg = _both_classes(y, "tar_at_far")
    allowed = np.floor(far * n_neg + 1e-9)  # false accepts permitted; tolerance for 1e-3 * 1000 style products
    if allowed < 1:
        raise ValueError(
            f"tar_at_far: FAR={far:g} needs at least {int(np.ceil(1 / far - 1e-9))} impostor pairs, got {n_neg}; "
            f"use far ≥ {1 / n_neg:.3g} or add impostor pairs"
        )
    thresholds, tps, fps = _operating_points(s, y)
    last = int(np.searchsorted(fps, allowed, side="right")) - 1  # last point with fps ≤ allowed (fps ascending)
    i = int(np.searchsorted(tps, tps[last], side="left"))  # same TAR at the highest threshold (fewest false accepts)
    return float(tps[i] / n_pos), float(thresholds[i])


def best_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """Threshold that maximises verification accuracy on these pairs.

    Candidates are +inf (accept nothing), the midpoint between each pair of adjacent distinct sorted scores,
    and -inf (accept all). Among equally accurate thresholds the highest (fewest accepts) wins.

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine pair; one class alone is allowed.

    Returns:
        (threshold, accuracy) with accuracy = mean((score >= threshold) == same).

    Raises:
        ValueError: on invalid or empty input.
    """
    s, y = check_scored_pairs(scores, same, "best_threshold")
    distinct, tps, fps = _operating_points(s, y)
    correct = tps + (y.size - y.sum() - fps)  # (M+1,) true accepts + true rejects at each point
    upper, lower = distinct[1:-1], distinct[2:]  # (M-1,) adjacent distinct scores
    mid = upper / 2 + lower / 2  # halves first: no overflow near the float limits
    mid = np.where(mid > lower, mid, upper)  # adjacent floats can round the midpoint down onto `lower`
    candidates = np.r_[np.inf, mid, -np.inf]  # (M+1,) candidate i accepts the first i distinct scores
    best = int(np.argmax(correct))  # first maximum = highest threshold
    return float(candidates[best]), float(correct[best] / y.size)


def accuracy_at(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    """Verification accuracy when `score >= threshold` predicts same.

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine pair.
        threshold: decision threshold (±inf allowed).

    Returns:
        Fraction of pairs predicted correctly.

    Raises:
        ValueError: on invalid or empty input.
    """
    s, y = check_scored_pairs(scores, same, "accuracy_at")
    return float(np.mean((s >= threshold) == y))


def train_test_accuracy(
    train_scores: npt.ArrayLike, train_same: npt.ArrayLike, test_scores: npt.ArrayLike, test_same: npt.ArrayLike
) -> tuple[float, float]:
    """Accuracy on test pairs at the threshold that is best on train pairs.

    Args:
        train_scores: (N,) float scores of the pairs that choose the threshold.
        train_same: (N,) bool labels of those pairs.
        test_scores: (M,) float scores of the held-out pairs.
        test_same: (M,) bool labels of those pairs.

    Returns:
        (test accuracy, threshold chosen on train).

    Raises:
        ValueError: on invalid or empty input on either side.
    """
    threshold, _ = best_threshold(train_scores, train_same)
    return accuracy_at(test_scores, test_same, threshold), threshold


def kfold_accuracy(scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike) -> VerificationFolds:
    """K-fold verification accuracy as in the LFW protocol: each fold is scored at the threshold best on the others.

    Args:
        scores: (N,) float, higher = more similar.
        same: (N,) bool, True for a genuine pair.
        folds: (N,) int fold id of each pair (any ids; at least two distinct).

    Returns:
        Per-fold accuracies and thresholds, their mean and population std.

    Raises:
        ValueError: on invalid input or fewer than two folds.
    """
    s, y = check_scored_pairs(scores, same, "kfold_accuracy")
    f = np.asarray(folds)
    if f.shape != s.shape or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"kfold_accuracy: folds must be {s.shape} int, got {f.shape} {f.dtype}")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError(f"kfold_accuracy: needs at least two folds, got {ids.size}")
    accuracies, thresholds = [], []
    for fold in ids:  # a loop over the k folds, not over pairs
        test = f == fold
        accuracy, threshold = train_test_accuracy(s[~test], y[~test], s[test], y[test])
        accuracies.append(accuracy)
        thresholds.append(threshold)
    acc = np.array(accuracies)
    return VerificationFolds(
        folds=tuple(int(i) for i in ids),
        accuracies=tuple(accuracies),
        thresholds=tuple(thresholds),
        mean=float(acc.mean()),
        std=float(acc.std()),
    )
