"""The inverted-file k-NN graph: the exact graph when every list is searched, the planted edges with a few."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.errors import LookalikeError
from pipeline.search.ivf import IvfOptions, assign_lists, ivf_topk, nearest_lists, train_lists
from pipeline.search.knn import blocked_topk, edge_recall, threshold_edges


def _clustered(n: int = 4000, dim: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dim)).astype(np.float32)
    x = centers[rng.integers(40, size=n)] + rng.standard_normal((n, dim)).astype(np.float32)
    x[1::10] = x[::10][: x[1::10].shape[0]] + 0.05 * rng.standard_normal((x[1::10].shape[0], dim))  # planted copies
    return x.astype(np.float32)


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclid", "manhattan"])
def test_probing_every_list_gives_the_exact_scores(distance: str) -> None:
    x = _clustered(2000, 12)
    if distance == "manhattan":
        x = (x > 0).astype(np.float32)  # phash-like bits: many ties, so compare scores, not neighbours
    got = ivf_topk(x, 5, distance, IvfOptions(nprobe=10_000))  # type: ignore[arg-type]
    want = blocked_topk(x, 5, distance)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-4)
    assert not (got.indices == np.arange(len(x))[:, None]).any()  # nobody is their own neighbour


def test_few_probes_find_the_planted_edges_and_miss_some_far_neighbours() -> None:
    x = _clustered()
    exact = blocked_topk(x, 10, "cosine")
    got = ivf_topk(x, 10, "cosine", IvfOptions(nprobe=2))
    near = edge_recall(np.arange(len(x)), exact, threshold_edges(got, 0.95), 0.95)
    assert near.exact_edges >= 400 and near.recall >= 0.99  # the planted copies score ≈ 0.999
    assert (got.indices != exact.indices).any()  # 2 of 63 lists: an approximate graph, not exact search


def test_the_same_seed_gives_the_same_graph_and_rows_keep_their_order() -> None:
    x = _clustered(1500)
    a, b = ivf_topk(x, 3, "cosine"), ivf_topk(x, 3, "cosine")
    np.testing.assert_array_equal(a.indices, b.indices)
    assert (np.diff(a.scores, axis=1) <= 1e-6).all()  # best first


def test_tiny_inputs_and_list_counts() -> None:
    one = ivf_topk(np.ones((1, 4), np.float32), 3, "cosine")
    assert (one.indices == -1).all() and np.isneginf(one.scores).all()
    two = ivf_topk(np.eye(2, 4, dtype=np.float32), 3, "cosine")
    assert two.indices[:, 0].tolist() == [1, 0] and (two.indices[:, 1:] == -1).all()
    assert IvfOptions().lists_for(100) == 2 and IvfOptions().lists_for(10**6) == 1000
    assert IvfOptions(nlist=50).lists_for(10) == 10
    with pytest.raises(ValueError, match="k ≥ 1"):
        ivf_topk(np.ones((3, 2), np.float32), 0, "cosine")


def test_lists_are_balanced_enough_and_each_searches_itself_first() -> None:
    x = torch.from_numpy(_clustered(3000))
    centroids = train_lists(x, 50, IvfOptions(), spherical=False)
    sizes = torch.bincount(assign_lists(x, centroids, spherical=False), minlength=50)
    assert sizes.sum() == 3000 and (sizes > 0).sum() >= 40  # k-means spreads the points, re-seeding empty lists
    near = nearest_lists(centroids, 4, spherical=False)
    assert near.shape == (50, 4) and (near[:, 0] == torch.arange(50)).all()


def test_a_huge_list_is_scored_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.repeat(_clustered(30, 8), 40, axis=0) + 0.1 * np.random.default_rng(1).standard_normal((1200, 8))
    monkeypatch.setattr("pipeline.search.ivf.SCORE_BLOCK_BYTES", 4 * 1200 * 5)  # 5 rows of scores per block
    got = ivf_topk(x.astype(np.float32), 3, "euclid", IvfOptions(nlist=1))
    want = blocked_topk(x.astype(np.float32), 3, "euclid")
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)  # float32 ‖q‖² + ‖x‖² − 2q·x: blocks round apart


def test_binary_vectors_need_points_spilled_into_a_second_list() -> None:
    """phash-like bits have no clear list borders: a copy 2 bits off often lands in a list its original's list does
    not search; as a candidate in its 2 nearest lists it is found."""
    rng = np.random.default_rng(0)
    x = (rng.random((4000, 64)) > 0.5).astype(np.float32)
    sources = rng.choice(4000, 400, replace=False)
    copies = rng.choice(np.setdiff1d(np.arange(4000), sources), 400, replace=False)
    for s, c in zip(sources, copies, strict=True):
        x[c] = x[s]
        flip = rng.choice(64, 2, replace=False)
        x[c, flip] = 1 - x[c, flip]
    exact = blocked_topk(x, 5, "manhattan")

    def found(spill: int) -> int:
        graph = ivf_topk(x, 5, "manhattan", IvfOptions(nprobe=4, spill=spill))
        recall = edge_recall(np.arange(len(x)), exact, threshold_edges(graph, 0.95), 0.95)
        assert recall.exact_edges == 400
        return recall.found

    assert found(1) <= 390 and found(2) >= 399


@pytest.mark.parametrize(("given", "message"), [({"spill": 0}, "spill = 0"), ({"nprobe": 0}, "nprobe = 0")])
def test_options_are_checked(given: dict[str, int], message: str) -> None:
    with pytest.raises(LookalikeError, match=message):
        IvfOptions(**given)  # type: ignore[arg-type]
