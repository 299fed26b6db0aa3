"""Metric functions against hand-computed cases, naive-loop oracles and scikit-learn."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.metrics.copies import micro_average_precision, recall_at_precision
from pipeline.metrics.pairs import (
    accuracy_at,
    best_threshold,
    kfold_accuracy,
    roc_auc,
    roc_curve,
    tar_at_far,
    train_test_accuracy,
)
from pipeline.metrics.ranking import (
    hit_matrix,
    hit_rate_at_k,
    map_at_r,
    mean_reciprocal_rank,
    mrr,
    precision_at_1,
    rank_of_answer,
    recall_at_k,
    top_k_accuracy,
)

# ---------------------------------------------------------------- legacy hit-matrix metrics


def test_hit_matrix_breaks_ties_pessimistically_when_given_scores() -> None:
    labels, ranked = ["a", "a", "a"], [["a", "b", "a"], ["b", "a", "c"], ["a", "a", "b"]]
    scores = [[0.9, 0.9, 0.5], [0.9, 0.8, 0.8], [0.9, 0.7, 0.7]]
    assert hit_matrix(labels, ranked, 3)[:, 0].tolist() == [True, False, True]  # the engine's order
    tied = hit_matrix(labels, ranked, 3, scores)
    # row 0: the tie at rank 1 puts "b" first; row 1: "a" and "c" tie at 0.8, "c" first; row 2: no tie at rank 1
    assert tied.tolist() == [[False, True, True], [False, False, True], [True, False, True]]


def test_hit_matrix_pads_short_rankings() -> None:
    m = hit_matrix(["a", "b", "c"], [["a", "b"], ["a", "b", "b"], []], k=3)
    assert m.tolist() == [[True, False, False], [False, True, True], [False, False, False]]


def test_hand_computed_scores() -> None:
    m = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=bool)
    assert precision_at_1(m) == pytest.approx(0.25)
    assert hit_rate_at_k(m, 2) == pytest.approx(0.5)
    assert hit_rate_at_k(m, 3) == pytest.approx(0.75)
    assert mean_reciprocal_rank(m) == pytest.approx((1 + 1 / 2 + 0 + 1 / 3) / 4)


def test_mrr_against_naive_loop() -> None:
    m = np.random.default_rng(0).random((50, 7)) < 0.2
    naive = np.mean([next((1 / (j + 1) for j, v in enumerate(row) if v), 0.0) for row in m])
    assert mean_reciprocal_rank(m) == pytest.approx(naive)


def test_empty_inputs() -> None:
    empty = np.zeros((0, 3), dtype=bool)
    assert precision_at_1(empty) == 0.0 and mean_reciprocal_rank(empty) == 0.0


# ---------------------------------------------------------------- candidate ranking


def test_rank_of_answer_hand_computed_with_pessimistic_ties() -> None:
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.8], [0.3, 0.3, 0.3], [0.1, 0.2, 0.3]])
    ranks = rank_of_answer(scores, np.array([0, 1, 2, 0]))
    assert ranks.tolist() == [1, 2, 3, 3]
    assert ranks.dtype == np.int64


def test_rank_of_answer_nan_ranks_last() -> None:
    scores = np.array([[np.nan, 0.5, 0.2], [np.nan, 0.5, 0.2], [np.nan, np.nan, 0.1]])
    assert rank_of_answer(scores, np.array([1, 0, 0])).tolist() == [1, 3, 3]


def test_rank_of_answer_one_candidate_and_no_queries() -> None:
    assert rank_of_answer(np.array([[0.1], [-5.0]]), np.array([0, 0])).tolist() == [1, 1]
    assert rank_of_answer(np.zeros((0, 4)), np.zeros(0, dtype=int)).shape == (0,)


@pytest.mark.parametrize(
    ("scores", "answer"),
    [
        (np.zeros((2, 3)), np.array([0, 3])),  # out of range
        (np.zeros((2, 3)), np.array([0, -1])),  # negative index would silently wrap
        (np.zeros((2, 3)), np.array([0.0, 1.0])),  # float answers
        (np.zeros((2, 3)), np.array([0])),  # wrong length
        (np.zeros((2, 0)), np.array([0, 0])),  # no candidates
        (np.zeros(3), np.array([0, 0, 0])),  # not 2-D
    ],
)
def test_rank_of_answer_rejects_bad_input(scores: np.ndarray, answer: np.ndarray) -> None:
    with pytest.raises(ValueError, match="rank_of_answer"):
        rank_of_answer(scores, answer)


def test_rank_of_answer_against_naive_loop() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(200, 9)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.05] = np.nan
    answer = rng.integers(0, 9, size=200)
    naive = []
    for row, a in zip(scores, answer, strict=True):
        if np.isnan(row[a]):
            naive.append(len(row))
        else:
            naive.append(1 + sum(1 for j, v in enumerate(row) if j != a and v >= row[a]))
    assert rank_of_answer(scores, answer).tolist() == naive


def test_top_k_accuracy_and_mrr_hand_computed() -> None:
    ranks = np.array([1, 2, 5, 1])
    assert top_k_accuracy(ranks, 1) == pytest.approx(0.5)
    assert top_k_accuracy(ranks, 2) == pytest.approx(0.75)
    assert top_k_accuracy(ranks, 5) == pytest.approx(1.0)
    assert mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 5 + 1) / 4)
    assert mrr(np.ones(3, dtype=int)) == 1.0 and top_k_accuracy(np.full(3, 4), 3) == 0.0


def test_ranks_agree_with_hit_matrix_metrics() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random((100, 12))  # no ties, so rank order is unambiguous
    answer = rng.integers(0, 12, size=100)
    hits = np.argsort(-scores, axis=1) == answer[:, None]  # (Q, C) one True per row
    ranks = rank_of_answer(scores, answer)
    assert top_k_accuracy(ranks, 3) == pytest.approx(hit_rate_at_k(hits, 3))
    assert mrr(ranks) == pytest.approx(mean_reciprocal_rank(hits))


@pytest.mark.parametrize("ranks", [np.zeros(0, dtype=int), np.array([0, 1]), np.array([1.0, 2.0])])
def test_rank_metrics_reject_bad_ranks(ranks: np.ndarray) -> None:
    with pytest.raises(ValueError, match="ranks"):
        mrr(ranks)
    with pytest.raises(ValueError, match="ranks"):
        top_k_accuracy(ranks, 1)


def test_top_k_accuracy_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(np.array([1]), 0)


# ---------------------------------------------------------------- verification


def _random_pairs(seed: int, n: int = 300, levels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores where genuine pairs score higher on average; `levels` > 0 rounds them to create ties."""
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.4
    scores = rng.normal(size=n) + 1.5 * same
    return (np.round(scores * levels) / levels if levels else scores), same


def test_roc_curve_and_auc_hand_computed() -> None:
    scores, same = np.array([0.9, 0.8, 0.8, 0.3]), np.array([True, False, True, False])
    fpr, tpr, thresholds = roc_curve(scores, same)
    assert thresholds.tolist() == [np.inf, 0.9, 0.8, 0.3]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert roc_auc(scores, same) == pytest.approx(0.875)  # the 0.8/0.8 tie counts one half: 3.5 / 4


def test_roc_auc_all_right_and_all_wrong() -> None:
    same = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), same) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), same) == 0.0
    assert roc_auc(np.full(4, 0.5), same) == 0.5


@pytest.mark.parametrize("levels", [0, 4])
def test_roc_matches_sklearn(levels: int) -> None:
    scores, same = _random_pairs(3, levels=levels)
    fpr, tpr, thresholds = roc_curve(scores, same)
    sk_fpr, sk_tpr, sk_thresholds = skm.roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    assert roc_auc(scores, same) == pytest.approx(skm.roc_auc_score(same, scores))


@pytest.mark.parametrize(
    ("scores", "same", "match"),
    [
        (np.array([0.1, 0.2]), np.array([True, True]), "both same and different"),
        (np.zeros(0), np.zeros(0, dtype=bool), "no pairs"),
        (np.array([0.1, np.nan]), np.array([True, False]), "NaN or infinite"),
        (np.array([0.1, 0.2]), np.array([True]), r"must both be \(N,\)"),
        (np.array([0.1, 0.2]), np.array([0.0, 1.0]), "bool or 0/1"),
    ],
)
def test_roc_rejects_bad_input(scores: np.ndarray, same: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        roc_auc(scores, same)


def test_labels_may_be_zero_one_ints() -> None:
    assert roc_auc(np.array([0.9, 0.1]), np.array([1, 0])) == 1.0


def test_tar_at_far_hand_computed() -> None:
    negatives = np.arange(10) / 10  # 0.0 .. 0.9
    scores = np.r_[negatives, 0.95, 0.85, 0.5]
    same = np.r_[np.zeros(10, bool), np.ones(3, bool)]
    assert tar_at_far(scores, same, far=0.1) == pytest.approx((2 / 3, 0.85))
    # one more false accept buys no TAR until 0.5: the highest threshold with TAR 2/3 is kept
    assert tar_at_far(scores, same, far=0.2) == pytest.approx((2 / 3, 0.85))
    assert tar_at_far(scores, same, far=0.5) == pytest.approx((1.0, 0.5))


def test_tar_at_far_all_right_and_all_wrong() -> None:
    same = np.r_[np.ones(5, bool), np.zeros(10, bool)]
    assert tar_at_far(np.r_[np.full(5, 0.9), np.full(10, 0.1)], same, far=0.1) == (1.0, 0.9)
    assert tar_at_far(np.r_[np.full(5, 0.1), np.linspace(0.5, 0.9, 10)], same, far=0.1) == (0.0, np.inf)


def test_tar_at_far_needs_enough_negatives() -> None:
    scores, same = _random_pairs(4, n=2000)
    n_neg = int((~same).sum())
    assert n_neg < 1e4
    with pytest.raises(ValueError, match="impostor pairs"):
        tar_at_far(scores, same, far=1e-4)
    with pytest.raises(ValueError, match="far must lie"):
        tar_at_far(scores, same, far=0.0)
    tar_at_far(scores, same, far=1 / n_neg)  # exactly one false accept is resolvable


@pytest.mark.parametrize("far", [1e-2, 0.05, 0.3])
def test_tar_at_far_matches_sklearn_roc(far: float) -> None:
    scores, same = _random_pairs(5, n=1000, levels=20)
    tar, threshold = tar_at_far(scores, same, far)
    sk_fpr, sk_tpr, _ = skm.roc_curve(same, scores, drop_intermediate=False)
    assert tar == pytest.approx(sk_tpr[sk_fpr <= far].max())
    accepted = scores >= threshold
    assert accepted[~same].mean() <= far and accepted[same].mean() == pytest.approx(tar)


def _naive_best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    values = sorted(set(scores.tolist()), reverse=True)
    candidates = [np.inf] + [(a + b) / 2 for a, b in pairwise(values)] + [-np.inf]
    best = (np.inf, -1.0)
    for t in candidates:  # descending, so strict > keeps the highest threshold on ties
        acc = float(np.mean([(s >= t) == y for s, y in zip(scores, same, strict=True)]))
        if acc > best[1]:
            best = (t, acc)
    return best


def test_best_threshold_hand_computed() -> None:
    # accepting {0.8} or {0.8, 0.4, 0.35} both score 3/4: the higher threshold, midway to 0.4, wins
    scores, same = np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])
    assert best_threshold(scores, same) == pytest.approx((0.6, 0.75))
    assert accuracy_at(scores, same, 0.6) == 0.75
    assert accuracy_at(scores, same, 0.225) == 0.75


def test_best_threshold_all_right_and_one_class() -> None:
    assert best_threshold(np.array([0.2, 0.9, 0.1, 0.7]), np.array([0, 1, 0, 1])) == pytest.approx((0.45, 1.0))
    assert best_threshold(np.array([0.3, 0.5]), np.array([True, True])) == (-np.inf, 1.0)
    assert best_threshold(np.array([0.3, 0.5]), np.array([False, False])) == (np.inf, 1.0)
    assert best_threshold(np.array([0.3]), np.array([True])) == (-np.inf, 1.0)


def test_best_threshold_separates_adjacent_floats() -> None:
    # regression: 0.3/2 + nextafter(0.3, 0)/2 rounds down onto the lower score, which would accept it
    low = np.nextafter(0.3, 0.0)
    threshold, accuracy = best_threshold(np.array([0.3, low]), np.array([True, False]))
    assert accuracy == 1.0 and low < threshold <= 0.3


@pytest.mark.parametrize("seed", [6, 7])
def test_best_threshold_against_naive_loop(seed: int) -> None:
    scores, same = _random_pairs(seed, n=120, levels=5)
    threshold, accuracy = best_threshold(scores, same)
    naive_threshold, naive_accuracy = _naive_best_threshold(scores, same)
    assert accuracy == pytest.approx(naive_accuracy)
    assert threshold == pytest.approx(naive_threshold)
    assert accuracy_at(scores, same, threshold) == pytest.approx(accuracy)


def test_train_test_accuracy_hand_computed() -> None:
    accuracy, threshold = train_test_accuracy(
        np.array([0.9, 0.7, 0.3, 0.1]), np.array([1, 1, 0, 0]), np.array([0.6, 0.4, 0.2]), np.array([1, 1, 0])
    )
    assert threshold == pytest.approx(0.5)
    assert accuracy == pytest.approx(2 / 3)


def test_kfold_accuracy_hand_computed() -> None:
    scores = np.array([0.9, 0.2, 0.8, 0.3, 0.6, 0.65])
    same = np.array([True, False, True, False, True, False])
    result = kfold_accuracy(scores, same, np.array([0, 0, 1, 1, 2, 2]))
    assert result.folds == (0, 1, 2)
    # fold 0 trains on {0.8T, 0.3F, 0.6T, 0.65F}: best accepts {0.8} (3/4, higher than accepting all four)
    assert result.thresholds == pytest.approx((0.725, 0.775, 0.55))
    assert result.accuracies == pytest.approx((1.0, 1.0, 0.5))
    assert result.mean == pytest.approx(2.5 / 3)
    assert result.std == pytest.approx(np.std([1.0, 1.0, 0.5]))
    assert result.standard_error == pytest.approx(np.std([1.0, 1.0, 0.5], ddof=1) / np.sqrt(3))


def test_kfold_accuracy_against_naive_loop() -> None:
    scores, same = _random_pairs(8, n=200, levels=4)
    folds = np.arange(200) % 10  # 10 folds, as in LFW
    result = kfold_accuracy(scores, same, folds)
    for i, fold in enumerate(range(10)):
        test = folds == fold
        naive_threshold, _ = _naive_best_threshold(scores[~test], same[~test])
        naive_accuracy = np.mean([(s >= naive_threshold) == y for s, y in zip(scores[test], same[test], strict=True)])
        assert result.thresholds[i] == pytest.approx(naive_threshold)
        assert result.accuracies[i] == pytest.approx(naive_accuracy)
    assert result.mean == pytest.approx(np.mean(result.accuracies))


@pytest.mark.parametrize("folds", [np.zeros(4, dtype=int), np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 1])])
def test_kfold_accuracy_rejects_bad_folds(folds: np.ndarray) -> None:
    with pytest.raises(ValueError, match="folds"):
        kfold_accuracy(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), folds)


def test_accuracy_at_rejects_empty() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        accuracy_at(np.zeros(0), np.zeros(0, dtype=bool), 0.5)


# ---------------------------------------------------------------- retrieval


def test_map_at_r_hand_computed() -> None:
    rel = np.array([[True, False, True, False], [False, True, False, True], [True, True, False, False]])
    # row 0, R=3: (1 + 0 + 2/3) / 3; row 1, R=2: (0 + 1/2) / 2 (rank 4 lies beyond R); row 2, R=2: 1
    expected = np.mean([(1 + 2 / 3) / 3, 0.25, 1.0])
    assert map_at_r(rel, np.array([3, 2, 2])) == pytest.approx(expected)


def test_map_at_r_all_wrong_and_short_rankings() -> None:
    assert map_at_r(np.zeros((2, 3), dtype=bool), np.array([1, 3])) == 0.0
    # K = 2 < R = 4: unseen ranks 3..4 count as misses, so this is a lower bound
    assert map_at_r(np.array([[True, True]]), np.array([4])) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("rel", "n_relevant", "match"),
    [
        (np.array([[True, False]]), np.array([0]), "n_relevant ≥ 1"),
        (np.array([[True, True]]), np.array([1]), "more relevant results"),
        (np.zeros((0, 2), dtype=bool), np.zeros(0, dtype=int), "non-empty"),
        (np.array([[1, 0]]), np.array([1]), "bool"),
        (np.array([[True, False]]), np.array([1, 1]), r"must be \(1,\) int"),
    ],
)
def test_map_at_r_rejects_bad_input(rel: np.ndarray, n_relevant: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        map_at_r(rel, n_relevant)


def test_map_at_r_against_naive_loop() -> None:
    rng = np.random.default_rng(9)
    rel = rng.random((80, 15)) < 0.3
    n_relevant = rel.sum(axis=1) + rng.integers(0, 4, size=80)  # some relevant items never retrieved
    n_relevant = np.maximum(n_relevant, 1)
    naive = []
    for row, r in zip(rel, n_relevant, strict=True):
        found, total = 0, 0.0
        for i in range(min(r, len(row))):
            if row[i]:
                found += 1
                total += found / (i + 1)
        naive.append(total / r)
    assert map_at_r(rel, n_relevant) == pytest.approx(np.mean(naive))


def test_recall_at_k_is_metric_learning_recall() -> None:
    rel = np.array([[False, True, True], [False, False, False], [True, False, False]])
    assert recall_at_k(rel, 1) == pytest.approx(1 / 3)
    assert recall_at_k(rel, 2) == pytest.approx(2 / 3)  # a hit counts once, however many relevant
    assert recall_at_k(rel, 10) == pytest.approx(2 / 3)  # k > K sees the K given ranks
    random_rel = np.random.default_rng(10).random((40, 6)) < 0.2
    assert recall_at_k(random_rel, 4) == pytest.approx(hit_rate_at_k(random_rel, 4))
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(rel, 0)
    with pytest.raises(ValueError, match="non-empty"):
        recall_at_k(np.zeros((0, 3), dtype=bool), 1)


# ---------------------------------------------------------------- copy detection


def _naive_disc21(scores: np.ndarray, is_true: np.ndarray, n_gt: int) -> tuple[list[float], list[float], list[float]]:
    """The challenge scorer's order: sort (score, not true) descending, so wrong predictions lead each tie."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], not is_true[i]), reverse=True)
    precision, recall, sorted_scores, found = [], [], [], 0
    for n, i in enumerate(order, start=1):
        found += bool(is_true[i])
        precision.append(found / n)
        recall.append(found / n_gt)
        sorted_scores.append(float(scores[i]))
    return precision, recall, sorted_scores


def test_micro_ap_hand_computed() -> None:
    # precision 1, 1/2, 2/3 at recall 1/4, 1/4, 2/4: µAP = 1/4 + 2/3 * 1/4
    assert micro_average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 4) == pytest.approx(
        0.25 + 1 / 6
    )


def test_micro_ap_ties_are_pessimistic() -> None:
    for is_true in (np.array([True, False]), np.array([False, True])):
        assert micro_average_precision(np.array([0.5, 0.5]), is_true, 1) == pytest.approx(0.5)


def test_micro_ap_all_right_all_wrong_and_empty() -> None:
    assert micro_average_precision(np.array([0.3, 0.2]), np.array([True, True]), 2) == 1.0
    assert micro_average_precision(np.array([0.3, 0.2]), np.array([False, False]), 2) == 0.0
    assert micro_average_precision(np.zeros(0), np.zeros(0, dtype=bool), 5) == 0.0


@pytest.mark.parametrize(
    ("is_true", "n_gt", "match"),
    [(np.array([True, True]), 1, "duplicate"), (np.array([False, False]), 0, "n_ground_truth must be")],
)
def test_micro_ap_rejects_bad_counts(is_true: np.ndarray, n_gt: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        micro_average_precision(np.array([0.3, 0.2]), is_true, n_gt)


def test_micro_ap_against_naive_loop_with_ties() -> None:
    rng = np.random.default_rng(11)
    is_true = rng.random(400) < 0.3
    scores = np.round(rng.random(400) + 0.5 * is_true, 1)  # many ties
    n_gt = int(is_true.sum()) + 25  # some ground truth never predicted
    precision, recall, _ = _naive_disc21(scores, is_true, n_gt)
    naive = sum((r - r0) * p for p, r, r0 in zip(precision, recall, [0.0, *recall[:-1]], strict=True))
    assert micro_average_precision(scores, is_true, n_gt) == pytest.approx(naive)


def test_micro_ap_matches_sklearn_when_all_ground_truth_predicted() -> None:
    rng = np.random.default_rng(12)
    is_true = rng.random(300) < 0.3
    scores = rng.random(300) + 0.4 * is_true  # continuous: no ties
    n_gt = int(is_true.sum())
    sk = skm.average_precision_score(is_true, scores)
    assert micro_average_precision(scores, is_true, n_gt) == pytest.approx(sk)
    # missed ground truth scales µAP down: recall steps shrink by n_gt / (2 n_gt)
    assert micro_average_precision(scores, is_true, 2 * n_gt) == pytest.approx(sk / 2)


def test_recall_at_precision_hand_computed() -> None:
    scores, is_true = np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, True, False, True])
    # precision 1, 1, 2/3, 3/4 at recall .2, .4, .4, .6
    assert recall_at_precision(scores, is_true, 5, precision=0.9) == pytest.approx((0.4, 0.8))
    assert recall_at_precision(scores, is_true, 5, precision=0.7) == pytest.approx((0.6, 0.6))
    assert recall_at_precision(np.array([0.9, 0.8]), np.array([False, True]), 1) == (0.0, np.inf)
    assert recall_at_precision(np.zeros(0), np.zeros(0, dtype=bool), 3) == (0.0, np.inf)
    with pytest.raises(ValueError, match="precision must lie"):
        recall_at_precision(scores, is_true, 5, precision=0.0)


def test_recall_at_precision_threshold_is_realisable_under_ties() -> None:
    # the 0.5 tie holds a right and a wrong pair: accepting it gives precision 2/3, so only 0.9 qualifies
    scores, is_true = np.array([0.9, 0.5, 0.5]), np.array([True, True, False])
    assert recall_at_precision(scores, is_true, 4, precision=0.9) == pytest.approx((0.25, 0.9))


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_recall_at_precision_against_naive_thresholds(target: float) -> None:
    rng = np.random.default_rng(13)
    is_true = rng.random(300) < 0.4
    scores = np.round(rng.random(300) + 0.8 * is_true, 1)
    n_gt = int(is_true.sum()) + 10
    best = (0.0, np.inf)
    for t in sorted(set(scores.tolist()), reverse=True):  # every realisable operating point
        accepted = scores >= t
        p, r = is_true[accepted].mean(), is_true[accepted].sum() / n_gt
        if p >= target and r > best[0]:
            best = (r, t)
    assert recall_at_precision(scores, is_true, n_gt, precision=target) == pytest.approx(best)


def test_per_label_mean_weighs_labels_equally() -> None:
    from pipeline.metrics.ranking import per_label_mean

    # label a: 3 queries, 1 right (1/3); label b: 1 query, right (1) → (1/3 + 1) / 2
    assert per_label_mean(["a", "a", "a", "b"], [1, 0, 0, 1]) == pytest.approx(2 / 3)
    assert per_label_mean([], []) == 0.0
