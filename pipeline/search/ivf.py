"""The approximate k-NN graph of a collection held in memory: FAISS's inverted-file index (IVF-Flat).

Why FAISS and not the engine's HNSW index for this: the graph needs every point's neighbours, which is N queries.
Through the engine each query is one HNSW walk from Python (0.2–0.6 ms, one core), so 100k points cost about the
same as exact search; FAISS scans an inverted file for a whole batch of queries in compiled, multithreaded code:
k-means puts the N vectors into `nlist` ≈ √N lists, each query scores the members of its `nprobe` nearest lists
only (≈ nprobe × √N points instead of N). Time grows as N^1.5 × D, memory is a second copy of the N × D float32
vectors (FAISS's lists) beside the caller's. A near-duplicate is a point's nearest neighbour by a wide margin, so
it lies in one of the few nearest lists: benchmarks/dedup_scale.py measures the edges found against exact search.

Scores follow `pipeline.store.scoring` (Qdrant's similarity for the collection's distance): cosine and dot as inner
products, Euclid as the negated distance, Manhattan as 1 - d/dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.errors import LookalikeError
from pipeline.core.records import Distance
from pipeline.search.knn import KnnGraph
from pipeline.store.scoring import prepare

BATCH = 65_536  # vectors added or searched per FAISS call (bounds the prepared copy and the progress steps)
TRAIN_PER_LIST = 64  # k-means training points per list
MIN_TRAIN_PER_LIST = 39  # FAISS warns below this


@dataclass(frozen=True)
class IvfOptions:
    """The inverted file's shape and how much of it a query scans.

    Attributes:
        nlist: lists (k-means cells); None = round(√N) (fewer below 1,521 points: 39 per list to train on).
        nprobe: nearest lists each query scans (more: more edges found, slower; all lists = exact).
        niter: k-means iterations when training the lists.
        seed: the k-means and training-sample seed (the same seed gives the same graph).
    """

    nlist: int | None = None
    nprobe: int = 8
    niter: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nlist is not None and self.nlist < 1:
            raise LookalikeError(f"nlist = {self.nlist}: the inverted file needs at least 1 list", setting="nlist")
        if self.nprobe < 1:
            raise LookalikeError(f"nprobe = {self.nprobe}: a query must scan at least 1 list", setting="nprobe")

    def lists_for(self, n: int) -> int:
        """The number of lists for N vectors: `nlist` (at most N), or round(√N) with ≥ 39 vectors per list to train
        on (FAISS's minimum)."""
        if self.nlist is not None:
            return max(1, min(n, self.nlist))
        return max(1, min(round(math.sqrt(n)), n // MIN_TRAIN_PER_LIST))


def load_faiss() -> ModuleType:
    """The faiss module.

    Raises:
        LookalikeError: faiss is not installed.
    """
    try:
        import faiss
    except ImportError:
        raise LookalikeError(
            "the ivf k-NN graph needs faiss: pip install faiss-cpu (or faiss-gpu), or use --method ann or exact"
        ) from None
    return faiss


def faiss_available() -> bool:
    """Whether faiss can be imported here."""
    try:
        load_faiss()
    except LookalikeError:
        return False
    return True


def _metric(faiss: ModuleType, distance: Distance) -> Any:
    return {"euclid": faiss.METRIC_L2, "manhattan": faiss.METRIC_L1}.get(distance, faiss.METRIC_INNER_PRODUCT)


def _prepared(vectors: np.ndarray, start: int, distance: Distance) -> np.ndarray:
    """One batch of rows as FAISS takes them: contiguous float32, unit length for cosine."""
    chunk = vectors[start : start + BATCH]
    return np.ascontiguousarray(prepare(chunk, distance, torch.device("cpu")).numpy(), dtype=np.float32)


def _to_scores(raw: np.ndarray, distance: Distance, dim: int) -> np.ndarray:
    """FAISS's distances → Qdrant's similarity (L2 comes back squared)."""
    if distance == "euclid":
        return -np.sqrt(np.maximum(raw, 0.0))
    if distance == "manhattan":
        return 1.0 - raw / dim
    return raw


def build_ivf(vectors: np.ndarray, distance: Distance, options: IvfOptions, progress: bool = False) -> Any:
    """Train the lists on a sample (`TRAIN_PER_LIST` per list) and add every row, a batch at a time."""
    faiss = load_faiss()
    n, dim = vectors.shape
    nlist = options.lists_for(n)
    metric = _metric(faiss, distance)
    quantizer = faiss.IndexFlat(dim, metric)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
    index.cp.niter, index.cp.seed = options.niter, options.seed
    rng = np.random.default_rng(options.seed)
    sample = np.sort(rng.choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False))
    index.train(_train_set(vectors, sample, distance))
    for start in tqdm(range(0, n, BATCH), desc="IVF lists", unit="batch", disable=not progress):
        index.add(_prepared(vectors, start, distance))
    index.nprobe = min(options.nprobe, nlist)
    return index


def _train_set(vectors: np.ndarray, sample: np.ndarray, distance: Distance) -> np.ndarray:
    picked = vectors[sample]
    return np.concatenate([_prepared(picked, s, distance) for s in range(0, picked.shape[0], BATCH)])


def ivf_topk(
    vectors: np.ndarray, k: int, distance: Distance, options: IvfOptions | None = None, progress: bool = False
) -> KnnGraph:
    """Approximate top-k neighbours of every row among the other rows through an IVF-Flat index.

    Args:
        vectors: (N, D) float32; not modified.
        k: neighbours per row (≥ 1).
        distance: the collection's distance; scores follow `pipeline.store.scoring`.
        options: lists, probes, k-means iterations and seed (default `IvfOptions()`).
        progress: show progress bars over batches.

    Returns:
        The graph, neighbours sorted by descending score; -1 / -inf where a row's probed lists held fewer than
        k other rows.

    Raises:
        ValueError: `vectors` is not 2-D or k < 1.
        LookalikeError: faiss is not installed.
    """
    if vectors.ndim != 2 or k < 1:
        raise ValueError(f"ivf_topk: need (N, D) vectors and k ≥ 1; got {vectors.shape}, {k}")
    options = options or IvfOptions()
    n, dim = vectors.shape
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    if n < 2:
        return KnnGraph(indices, scores)
    index = build_ivf(vectors, distance, options, progress)
    for start in tqdm(range(0, n, BATCH), desc="IVF k-NN", unit="batch", disable=not progress):
        raw, found = index.search(_prepared(vectors, start, distance), k + 1)
        own = np.arange(start, start + found.shape[0])[:, None]
        drop = (found == own) | (found < 0)
        order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # self and empty slots last, the rest in order
        kept, kept_raw = np.take_along_axis(found, order, 1), np.take_along_axis(raw, order, 1)
        valid = ~np.take_along_axis(drop, order, 1)
        indices[start : start + found.shape[0]] = np.where(valid, kept, -1)
        scores[start : start + found.shape[0]] = np.where(valid, _to_scores(kept_raw, distance, dim), -np.inf)
    return KnnGraph(indices, scores)
