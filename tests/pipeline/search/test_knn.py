"""Blocked exact top-k against a brute-force oracle, Qdrant's own ranking, and edge thresholding."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.records import Distance
from pipeline.search.knn import (
    Edges,
    KnnGraph,
    StoreSearch,
    auto_block_size,
    blocked_topk,
    edge_recall,
    store_topk,
    threshold_edges,
)
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for
from pipeline.store.scoring import maxsim, pair_similarity


def _oracle(x: np.ndarray, distance: Distance) -> np.ndarray:
    """(N, N) similarity by a plain loop over pairs, self = -inf."""
    n, d = x.shape
    unit = x / np.linalg.norm(x, axis=1, keepdims=True) if distance == "cosine" else x
    sims = np.full((n, n), -np.inf)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a, b = unit[i].astype(np.float64), unit[j].astype(np.float64)
            if distance in ("cosine", "dot"):
                sims[i, j] = a @ b
            elif distance == "euclid":
                sims[i, j] = -np.sqrt(((a - b) ** 2).sum())
            else:
                sims[i, j] = 1.0 - np.abs(a - b).sum() / d
    return sims


def _vectors(distance: Distance, n: int = 41, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if distance == "manhattan":
        return rng.integers(0, 2, (n, d)).astype(np.float32)  # phash-like bits: many exact ties
    return rng.normal(size=(n, d)).astype(np.float32)


def _check_against_oracle(graph: KnnGraph, sims: np.ndarray, k: int) -> None:
    n = sims.shape[0]
    expected = -np.sort(-sims, axis=1)[:, :k]  # (N, k) the k best scores, whichever rows hold them
    np.testing.assert_allclose(graph.scores, expected, atol=1e-5)
    for i in range(n):
        row = graph.indices[i]
        assert i not in row and len(set(row.tolist())) == k  # never itself, never twice
        np.testing.assert_allclose(sims[i, row], graph.scores[i], atol=1e-5)  # each index really has its score


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclid", "manhattan"])
@pytest.mark.parametrize("block_size", [1, 7, 41, 1000])
def test_blocked_topk_matches_brute_force(distance: Distance, block_size: int) -> None:
    x = _vectors(distance)
    graph = blocked_topk(x, 5, distance, block_size=block_size)
    _check_against_oracle(graph, _oracle(x, distance), 5)


@pytest.mark.parametrize("distance", ["cosine", "euclid"])
def test_blocked_topk_of_some_rows_is_their_rows_of_the_whole_graph(distance: Distance) -> None:
    x = _vectors(distance)
    rows = np.array([0, 3, 17, len(x) - 1])
    part = blocked_topk(x, 4, distance, block_size=3, rows=rows)
    whole = blocked_topk(x, 4, distance)
    np.testing.assert_array_equal(part.indices, whole.indices[rows])
    np.testing.assert_allclose(part.scores, whole.scores[rows], atol=1e-6)


def test_ties_between_identical_vectors_are_exact() -> None:
    base = _vectors("cosine", n=6)
    x = np.concatenate([base, base, base[:2]])  # every row has at least one identical twin
    graph = blocked_topk(x, 3, "cosine", block_size=4)
    _check_against_oracle(graph, _oracle(x, "cosine"), 3)
    assert np.allclose(graph.scores[:, 0], 1.0, atol=1e-6)


def test_fewer_rows_than_k_are_padded() -> None:
    graph = blocked_topk(_vectors("dot", n=3), 5, "dot")
    assert (graph.indices[:, 2:] == -1).all() and np.isneginf(graph.scores[:, 2:]).all()
    assert (graph.indices[:, :2] >= 0).all()


def test_pair_similarity_matches_oracle() -> None:
    for distance in ("cosine", "dot", "euclid", "manhattan"):
        x = _vectors(distance, n=8)  # type: ignore[arg-type]
        sims = _oracle(x, distance)  # type: ignore[arg-type]
        got = pair_similarity(x[:4], x[4:], distance)  # type: ignore[arg-type]
        np.testing.assert_allclose(got, sims[np.arange(4), np.arange(4, 8)], atol=1e-5)


def test_auto_block_size_bounds_the_score_block() -> None:
    assert auto_block_size(100_000) * 100_000 * 4 <= 256 * 2**20
    assert auto_block_size(10) == 4096 and auto_block_size(10**9) == 1


def test_threshold_edges_are_undirected_and_unique() -> None:
    graph = KnnGraph(
        indices=np.array([[1, 2], [0, 2], [1, -1]]),
        scores=np.array([[0.9, 0.5], [0.9, 0.7], [0.7, -np.inf]], dtype=np.float32),
    )
    edges = threshold_edges(graph, 0.6)
    assert list(zip(edges.left.tolist(), edges.right.tolist(), strict=True)) == [(0, 1), (1, 2)]
    np.testing.assert_allclose(edges.score, [0.9, 0.7])


def test_store_topk_agrees_with_blocked(vector_store: VectorStore) -> None:
    x = _vectors("cosine", n=30, d=8, seed=3)
    store = vector_store
    spec = VectorSpec("v", 8, "cosine")
    store.ensure_collection("c", [spec])
    ids = [point_id_for(f"{i:064x}") for i in range(len(x))]
    store.upsert("c", [Point(pid, {"v": vec}) for pid, vec in zip(ids, x, strict=True)])
    via_store = store_topk(store, "c", spec, ids, 4, search=StoreSearch(page=7))
    blocked = blocked_topk(x, 4, "cosine")
    np.testing.assert_allclose(via_store.scores, blocked.scores, atol=1e-5)
    some = store_topk(store, "c", spec, ids, 4, rows=[5, 2], search=StoreSearch(exact=True, ef=4))
    np.testing.assert_allclose(some.scores, blocked.scores[[5, 2]], atol=1e-5)
    np.testing.assert_array_equal(some.indices, blocked.indices[[5, 2]])


def test_edge_recall_counts_exact_edges_the_graph_has() -> None:
    exact = KnnGraph(np.array([[1, 2], [0, 3]]), np.array([[0.99, 0.96], [0.99, 0.5]], dtype=np.float32))
    # rows 0 and 1 sampled: exact edges ≥ 0.95 are (0,1) and (0,2); (1,3) is below the threshold
    found = Edges(np.array([0, 2]), np.array([1, 5]), np.array([0.99, 0.97], dtype=np.float32))
    r = edge_recall(np.array([0, 1]), exact, found, 0.95)
    assert (r.sampled_rows, r.exact_edges, r.found, r.recall) == (2, 2, 1, 0.5)
    both = Edges(np.array([0, 0]), np.array([1, 2]), np.array([0.99, 0.96], dtype=np.float32))
    assert edge_recall(np.array([0, 1]), exact, both, 0.95).recall == 1.0
    assert edge_recall(np.array([0, 1]), exact, found, 0.999).recall == 1.0  # nothing to find


def test_maxsim_and_multivector_pairs_match_a_loop() -> None:
    rng = np.random.default_rng(3)
    q, x = rng.normal(size=(2, 4, 5)), rng.normal(size=(3, 6, 5))
    expected = [[sum(max(float(a @ b) for b in xs) for a in qs) for xs in x] for qs in q]
    np.testing.assert_allclose(maxsim(q, x), expected, rtol=1e-5)
    np.testing.assert_allclose(pair_similarity(q, x[:2], "dot"), [expected[0][0], expected[1][1]], rtol=1e-5)
