"""k-nearest-neighbour graphs over a whole collection without an N×N matrix: blocked exact top-k on the
vectors (torch, GPU when given one), or batched Qdrant queries when the vectors do not fit in memory.

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
) -> KnnGraph:
    """Exact top-k neighbours of every row among the other rows, one block of rows at a time.

    Peak extra memory is one (block_size, N) float32 score matrix plus the (N, D) vectors on `device`;
    nothing N×N is ever built.

    Args:
        vectors: (N, D) float32.
        k: neighbours per row (≥ 1); rows with fewer than k others are padded with -1 / -inf.
        distance: the collection's distance; scores follow `pipeline.store.scoring`.
        block_size: rows per block; default `auto_block_size(N)` (a 256 MiB score block).
        device: where to compute (a CUDA device when present); default CPU.
        progress: show a progress bar over blocks.

    Returns:
        The graph, neighbours sorted by descending score.

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
    kk = min(k, max(n - 1, 0))
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    starts = range(0, n, block)
    with torch.inference_mode():
        for start in tqdm(starts, desc="k-NN blocks", unit="block", disable=not progress):
            stop = min(start + block, n)
            sims = similarity(x[start:stop], x, distance, binary)  # (B, N)
            rows = torch.arange(stop - start, device=device)
            sims[rows, rows + start] = -torch.inf  # a row is not its own neighbour
            if kk == 0:
                continue
            top = torch.topk(sims, kk, dim=1)  # sorted, best first
            scores[start:stop, :kk] = top.values.float().cpu().numpy()
            indices[start:stop, :kk] = top.indices.cpu().numpy()
    return KnnGraph(indices, scores)


def qdrant_topk(
    store: VectorStore, collection: str, spec: VectorSpec, ids: Sequence[str], k: int, page: int = 256
) -> KnnGraph:
    """Top-k neighbours of every point through batched Qdrant queries (for collections too big for memory).

    Vectors are fetched and queried a page at a time, so memory holds one page of vectors and the graph.

    Args:
        store: the store.
        collection: the collection.
        spec: the named vector to search.
        ids: point ids of the rows, in row order; neighbours outside `ids` are dropped.
        k: neighbours per row.
        page: points fetched and queried per request.

    Returns:
        The graph over `ids`' row numbers; rows whose point has no vector keep -1 / -inf.
    """
    row_of = {pid: i for i, pid in enumerate(ids)}
    indices = np.full((len(ids), k), -1, dtype=np.int64)
    scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    for start in range(0, len(ids), page):
        found = store.get_points(collection, list(ids[start : start + page]), spec.name)
        have = [(pid, vec) for pid, (vec, _) in found.items() if vec is not None]
        if not have:
            continue
        hits = store.query(collection, spec, np.stack([vec for _, vec in have]), k + 1)
        for (pid, _), row_hits in zip(have, hits, strict=True):
            kept = [(row_of[h.point_id], h.score) for h in row_hits if h.point_id != pid and h.point_id in row_of][:k]
            row = row_of[pid]
            indices[row, : len(kept)] = [j for j, _ in kept]
            scores[row, : len(kept)] = [s for _, s in kept]
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
