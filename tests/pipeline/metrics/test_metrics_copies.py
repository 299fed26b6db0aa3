"""Copy-detection ranks and recall@k: hand-computed ties (optimistic tie-breaking gets them wrong), a naive oracle."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.copies import copy_recall_at_k, reference_ranks

NAN = np.nan


def test_reference_ranks_count_ties_against_the_true_reference() -> None:
    scores = np.array(
        [
            [0.9, 0.9, 0.1],  # the engine listed the true one first, tied with a wrong one: rank 2, not 1
            [0.9, 0.9, 0.9],  # a three-way tie: rank 3 wherever the true one is listed
            [0.9, 0.8, 0.7],  # strictly first: rank 1
            [0.4, 0.6, NAN],  # true below one wrong; NaN is padding: rank 2
            [0.9, 0.8, 0.7],  # true not predicted: 0
        ]
    )
    is_true = np.array(
        [
            [True, False, False],
            [False, False, True],
            [True, False, False],
            [True, False, False],
            [False, False, False],
        ]
    )
    assert reference_ranks(scores, is_true).tolist() == [2, 3, 1, 2, 0]


def test_recall_at_1_needs_a_strictly_higher_score() -> None:
    # Regression (issue 18): recall@1 took the engine's first hit, so phash's tied scores made it move between runs.
    tie_first = (np.array([[0.5, 0.5]]), np.array([[True, False]]))
    tie_second = (np.array([[0.5, 0.5]]), np.array([[False, True]]))
    assert copy_recall_at_k(*tie_first, k=1) == 0.0 and copy_recall_at_k(*tie_second, k=1) == 0.0
    assert copy_recall_at_k(*tie_first, k=2) == 1.0
    constant = np.full((4, 3), 0.7)  # a constant scorer ranks nothing first
    assert copy_recall_at_k(constant, np.eye(4, 3, dtype=bool), k=1) == 0.0


def test_recall_at_k_hand_computed() -> None:
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.9, 0.2], [0.3, 0.2, 0.1], [0.6, 0.6, 0.6]])
    is_true = np.array([[True, False, False], [False, True, False], [False, False, True], [False, False, False]])
    # ranks 1, 2, 3, 0 → recall@1 1/4, recall@2 2/4, recall@3 3/4
    assert [copy_recall_at_k(scores, is_true, k) for k in (1, 2, 3)] == pytest.approx([0.25, 0.5, 0.75])


def _naive_rank(scores: np.ndarray, is_true: np.ndarray) -> int:
    """Sort by descending score, wrong before true within a tie; the true one's 1-based position."""
    items = [(s, t) for s, t in zip(scores, is_true, strict=True) if not np.isnan(s)]
    items.sort(key=lambda st: (-st[0], st[1]))
    return next((i + 1 for i, (_, t) in enumerate(items) if t), 0)


@pytest.mark.parametrize("seed", range(5))
def test_reference_ranks_against_naive_sort_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, (200, 6)).astype(np.float64)  # 4 levels: ties everywhere
    scores[rng.random((200, 6)) < 0.1] = NAN
    is_true = np.zeros((200, 6), dtype=bool)
    column = rng.integers(0, 7, 200)  # 6 = no true reference in the row
    for i, c in enumerate(column):
        if c < 6 and not np.isnan(scores[i, c]):
            is_true[i, c] = True
    expected = [_naive_rank(s, t) for s, t in zip(scores, is_true, strict=True)]
    assert reference_ranks(scores, is_true).tolist() == expected


@pytest.mark.parametrize(
    ("scores", "is_true", "match"),
    [
        (np.zeros(3), np.zeros(3, dtype=bool), r"\(Q, K\)"),
        (np.zeros((2, 2)), np.zeros((2, 3), dtype=bool), r"\(Q, K\)"),
        (np.zeros((1, 2)), np.ones((1, 2), dtype=bool), "more than one"),
        (np.array([[NAN, 0.1]]), np.array([[True, False]]), "NaN"),
    ],
)
def test_reference_ranks_reject_bad_input(scores: np.ndarray, is_true: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reference_ranks(scores, is_true)


def test_recall_at_k_rejects_no_queries_and_bad_k() -> None:
    with pytest.raises(ValueError, match="no queries"):
        copy_recall_at_k(np.zeros((0, 2)), np.zeros((0, 2), dtype=bool))
    with pytest.raises(ValueError, match="k must be"):
        copy_recall_at_k(np.zeros((1, 2)), np.zeros((1, 2), dtype=bool), k=0)
    assert reference_ranks(np.zeros((2, 0)), np.zeros((2, 0), dtype=bool)).tolist() == [0, 0]  # nothing predicted
