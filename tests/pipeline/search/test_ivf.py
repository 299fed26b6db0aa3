"""The FAISS inverted-file k-NN graph: the exact graph when every list is probed, most edges with few probes."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pipeline.core.errors import LookalikeError
from pipeline.search import ivf
from pipeline.search.ivf import IvfOptions, ivf_topk
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


def test_missing_faiss_is_one_line_naming_the_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert not ivf.faiss_available()
    with pytest.raises(LookalikeError, match=r"pip install faiss-cpu.*--method ann or exact"):
        ivf_topk(np.ones((3, 2), np.float32), 1, "cosine")
