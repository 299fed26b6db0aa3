"""k-nearest-neighbour graphs over a whole collection without an N×N matrix: blocked exact top-k on the
vectors (torch, GPU when given one), or batched queries through the store's HNSW index (approximate, never all
vectors in memory), and how much of the exact graph's thresholded edges an approximate one finds.

Every score here is the similarity Qdrant reports for the collection's distance (`pipeline.store.scoring`): cosine
and dot as they are, Euclid negated, Manhattan as 1 - d/dim (for 0/1 phash bits: the fraction of equal bits),
so a threshold means the same whichever method built the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.records import Distance
from pipeline.store import VectorSpec, VectorStore
from pipeline.store.scoring import is_binary, prepare, similarity

SCORE_BLOCK_BYTES = 256 * 2**20  # default budget for one block of scores (block rows × N float32)
MAX_AUTO_BLOCK = 4096


@dataclass(frozen=True)
class KnnGraph:
    """Each row's k nearest other rows, best first.

    Attributes:
        indices: (N, k) int64 row indices of the neighbours; -1 where a row has fewer than k others.
        scores: (N, k) float32 similarities (higher is better); -inf where `indices` is -1.
    """

    indices: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class StoreSearch:
    """How `store_topk` queries the store.

    Attributes:
        ef: HNSW search beam (more: higher recall, slower); None = the store's `hnsw_ef`.
        exact: score every point instead of walking the graph (the reference, N per query).
        page: points fetched and queried per request.
        progress: show a progress bar over pages.
    """

    ef: int | None = None
    exact: bool = False
    page: int = 512
    progress: bool = False


@dataclass(frozen=True)
class Edges:
    """Undirected scored edges between rows, each once with `left < right`.

    Attributes:
        left: (E,) int64.
        right: (E,) int64.
        score: (E,) float32 similarity of the two rows.
    """

    left: np.ndarray
    right: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.left.size)


def auto_block_size(n: int, budget_bytes: int = SCORE_BLOCK_BYTES) -> int:
    """Rows per block so that one (block, N) float32 score matrix fits in `budget_bytes` (1 … 4096 rows)."""
    return int(min(MAX_AUTO_BLOCK, max(1, budget_bytes // max(1, 4 * n))))


def blocked_topk(
    vectors: np.ndarray,
    k: int,
    distance: Distance,
    block_size: int | None = None,
    device: torch.device | None = None,
    progress: bool = False,
    rows: np.ndarray | None = None,
) -> KnnGraph:
    """Exact top-k neighbours of every row (or of `rows`) among the other rows, one block of rows at a time.

    Peak extra memory is one (block_size, N) float32 score matrix plus the (N, D) vectors on `device`;
    nothing N×N is ever built.

    Args:
        vectors: (N, D) float32.
        k: neighbours per row (≥ 1); rows with fewer than k others are padded with -1 / -inf.
        distance: the collection's distance; scores follow `pipeline.store.scoring`.
        block_size: rows per block; default `auto_block_size(N)` (a 256 MiB score block).
        device: where to compute (a CUDA device when present); default CPU.
        progress: show a progress bar over blocks.
        rows: only these rows' neighbours (e.g. a sample, to measure an approximate graph's recall); None = all.

    Returns:
        The graph, neighbours sorted by descending score; row i is `rows[i]` when given.

    Raises:
        ValueError: `vectors` is not 2-D, or k or block_size < 1.
    """
    if vectors.ndim != 2 or k < 1 or (block_size is not None and block_size < 1):
        raise ValueError(
            f"blocked_topk: need (N, D) vectors, k ≥ 1, block_size ≥ 1; got {vectors.shape}, {k}, {block_size}"
        )
    n = vectors.shape[0]
    device = device or torch.device("cpu")
    block = block_size or auto_block_size(n)
    x = prepare(vectors, distance, device)  # (N, D)
    binary = distance == "manhattan" and is_binary(x)
    wanted = torch.arange(n) if rows is None else torch.as_tensor(np.asarray(rows, dtype=np.int64))
    kk = min(k, max(n - 1, 0))
    indices = np.full((wanted.numel(), k), -1, dtype=np.int64)
    scores = np.full((wanted.numel(), k), -np.inf, dtype=np.float32)
    starts = range(0, wanted.numel(), block)
    with torch.inference_mode():
        for start in tqdm(starts, desc="k-NN blocks", unit="block", disable=not progress):
            stop = min(start + block, wanted.numel())
            own = wanted[start:stop].to(device)
            sims = similarity(x[own], x, distance, binary)  # (B, N)
            sims[torch.arange(stop - start, device=device), own] = -torch.inf  # a row is not its own neighbour
            if kk == 0:
                continue
            top = torch.topk(sims, kk, dim=1)  # sorted, best first
            scores[start:stop, :kk] = top.values.float().cpu().numpy()
            indices[start:stop, :kk] = top.indices.cpu().numpy()
    return KnnGraph(indices, scores)


def store_topk(
    store: VectorStore,
    collection: str,
    spec: VectorSpec,
    ids: Sequence[str],
    k: int,
    rows: Sequence[int] | np.ndarray | None = None,
    search: StoreSearch | None = None,
) -> KnnGraph:
    """Top-k neighbours of some or all rows through the store's own search: batched queries, one page at a time.

    This is the approximate k-NN graph when the collection has an HNSW index (`dedup --method ann`), and the exact
    one with `search.exact`. Memory holds one page of vectors and the (R, k) graph, never all vectors: time grows
    as R × (one HNSW query, roughly log N) instead of N² for `blocked_topk`.

    Args:
        store: the store.
        collection: the collection.
        spec: the named vector to search.
        ids: point ids of all rows, in row order; neighbours outside `ids` are dropped.
        k: neighbours per row.
        rows: the rows to find neighbours of (e.g. a sample, to measure recall); None = every row.
        search: beam, exactness, page size and progress of the queries (default `StoreSearch()`).

    Returns:
        The graph, row i for `rows[i]` (or row i of `ids`); rows whose point has no vector keep -1 / -inf.
    """
    search = search or StoreSearch()
    row_of = {pid: i for i, pid in enumerate(ids)}
    wanted = np.arange(len(ids)) if rows is None else np.asarray(rows, dtype=np.int64)
    indices = np.full((wanted.size, k), -1, dtype=np.int64)
    scores = np.full((wanted.size, k), -np.inf, dtype=np.float32)
    starts = range(0, wanted.size, search.page)
    for start in tqdm(starts, desc="k-NN queries", unit="page", disable=not search.progress):
        page = [ids[r] for r in wanted[start : start + search.page]]
        found = store.get_vectors(collection, page, spec.name)
        have = [(j, pid) for j, pid in enumerate(page, start=start) if pid in found]
        if not have:
            continue
        queries = np.stack([found[pid] for _, pid in have])
        hits = store.nearest(collection, spec, queries, k + 1, exact=search.exact, ef=search.ef)
        for (j, pid), row_hits in zip(have, hits, strict=True):
            kept = [(row_of[h], sc) for h, sc in row_hits if h != pid and h in row_of][:k]
            indices[j, : len(kept)] = [r for r, _ in kept]
            scores[j, : len(kept)] = [sc for _, sc in kept]
    return KnnGraph(indices, scores)


def threshold_edges(graph: KnnGraph, threshold: float) -> Edges:
    """Undirected edges of the graph whose score is at least `threshold`, each pair once (its best score)."""
    n, k = graph.indices.shape
    keep = (graph.indices >= 0) & (graph.scores >= threshold)  # (N, k)
    src = np.repeat(np.arange(n, dtype=np.int64), k)[keep.ravel()]
    dst = graph.indices.ravel()[keep.ravel()]
    score = graph.scores.ravel()[keep.ravel()]
    left, right = np.minimum(src, dst), np.maximum(src, dst)
    order = np.lexsort((-score, right, left))  # by pair, best score first
    left, right, score = left[order], right[order], score[order]
    first = np.r_[True, (left[1:] != left[:-1]) | (right[1:] != right[:-1])] if left.size else np.zeros(0, bool)
    return Edges(left[first], right[first], score[first].astype(np.float32))


@dataclass(frozen=True)
class EdgeRecall:
    """How many of the exact graph's edges at or above a threshold, around a sample of rows, a graph also has.

    Attributes:
        sampled_rows: rows whose exact neighbours were computed.
        exact_edges: their exact edges ≥ threshold (each undirected pair once).
        found: how many of those the approximate graph's edges contain.
    """

    sampled_rows: int
    exact_edges: int
    found: int

    @property
    def recall(self) -> float:
        """found / exact_edges; 1.0 when there is no exact edge to find."""
        return self.found / self.exact_edges if self.exact_edges else 1.0


def edge_recall(sample: np.ndarray, exact: KnnGraph, edges: Edges, threshold: float) -> EdgeRecall:
    """The share of the sampled rows' exact edges ≥ `threshold` that `edges` (the approximate graph's) contains.

    Args:
        sample: (R,) rows whose exact neighbours `exact` holds (row i of `exact` is `sample[i]`).
        exact: the exact top-k of the sampled rows among all rows.
        edges: the approximate graph's thresholded edges.
        threshold: the similarity an edge needs.
    """
    k = exact.indices.shape[1]
    keep = (exact.indices >= 0) & (exact.scores >= threshold)
    src = np.repeat(np.asarray(sample, dtype=np.int64), k)[keep.ravel()]
    dst = exact.indices.ravel()[keep.ravel()]
    want = np.unique(_pair_keys(np.minimum(src, dst), np.maximum(src, dst)))
    have = _pair_keys(edges.left, edges.right)
    return EdgeRecall(int(np.asarray(sample).size), int(want.size), int(np.isin(want, have).sum()))


def _pair_keys(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """One int per (left, right) row pair (rows < 2**31), for set operations on edges."""
    return left.astype(np.int64) << 31 | right.astype(np.int64)
