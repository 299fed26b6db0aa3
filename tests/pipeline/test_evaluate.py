"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluate import hit_matrix, hit_rate_at_k, mean_reciprocal_rank, precision_at_1


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
