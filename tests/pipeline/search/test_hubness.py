"""Hubness correction: hand-computed candidate means, MaxSim's query side, missing vectors, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.search.hubness import correct_hubness, mean_candidate_similarity
from pipeline.store.scoring import maxsim


def _unit(*xy: float) -> np.ndarray:
    v = np.array(xy, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_hub_candidate_loses_its_lead() -> None:
    # h sits between a and b, so it resembles both; the query is a little closer to h than to a
    vectors = {"a": _unit(1, 0), "b": _unit(0, 1), "h": _unit(1, 1)}
    ids = [["a", "b", "h"]]
    mean = mean_candidate_similarity(vectors, ids, "cosine")
    s = np.sqrt(0.5)
    np.testing.assert_allclose(mean, [[(0 + s) / 2, (0 + s) / 2, (s + s) / 2]], rtol=1e-6)
    query = _unit(1, 0.75)
    scores = np.array([[float(query @ vectors[c]) for c in ids[0]]])
    assert scores.argmax() == 2  # the hub wins before the correction …
    corrected = correct_hubness(scores, mean, 1.0)
    np.testing.assert_allclose(corrected, scores - mean)
    assert corrected.argmax() == 0  # … and a, the query's own candidate, after it
    np.testing.assert_array_equal(correct_hubness(scores, mean, 0.0), scores)


def test_missing_vectors_are_left_out_of_the_means() -> None:
    vectors = {"a": _unit(1, 0), "b": _unit(0, 1), "c": _unit(1, 1)}
    mean = mean_candidate_similarity(vectors, [["a", None, "gone", "b"], ["c", "a"], ["b"]], "cosine")
    assert mean.shape == (3, 4)
    np.testing.assert_allclose(mean[0], [0.0, np.nan, np.nan, 0.0], atol=1e-6)
    np.testing.assert_allclose(mean[1, :2], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    assert np.isnan(mean[1, 2:]).all() and np.isnan(mean[2]).all()  # a lone candidate has no others
    scores = np.array([[0.9, np.nan, 0.3, 0.8]])
    corrected = correct_hubness(scores, mean[:1], 1.0)
    np.testing.assert_allclose(corrected, [[0.9, np.nan, 0.3, 0.8]], atol=1e-6)  # cosine 0 to each other


def test_multivector_means_put_each_candidate_on_the_query_side() -> None:
    rng = np.random.default_rng(0)
    vectors = {k: rng.normal(size=(n, 4)).astype(np.float32) for k, n in (("a", 3), ("b", 3), ("c", 3))}
    mean = mean_candidate_similarity(vectors, [["a", "b", "c"]], "dot")
    for j, key in enumerate("abc"):
        others = np.stack([vectors[o] for o in "abc" if o != key])
        expected = maxsim(vectors[key][None], others).mean()
        assert mean[0, j] == pytest.approx(float(expected), rel=1e-5)
    one_way = maxsim(vectors["a"][None], vectors["b"][None])[0, 0]
    other_way = maxsim(vectors["b"][None], vectors["a"][None])[0, 0]
    assert one_way != pytest.approx(other_way)  # MaxSim is not symmetric, so the side matters


@pytest.mark.parametrize("beta", [-0.1, float("nan"), float("inf")])
def test_bad_strength_is_refused(beta: float) -> None:
    with pytest.raises(ValueError, match="hubness correction must be a number >= 0"):
        correct_hubness(np.zeros((1, 2)), np.zeros((1, 2)), beta)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        correct_hubness(np.zeros((1, 2)), np.zeros((1, 3)), 0.5)
