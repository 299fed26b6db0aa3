"""The approximate k-NN graph of a collection held in memory: an inverted file (k-means lists) searched list by list.

k-means puts the N vectors into `nlist` ≈ √N lists; each point belongs to its nearest list and is also a candidate in
its `spill` nearest lists (2 by default: a point near the border between lists is found from both sides). Every point of
a list is then scored against the candidates of the `nprobe` lists nearest that list (itself first), in one matrix
product per list: time grows as N × nprobe × N/nlist × D ≈ nprobe × N^1.5 × D instead of N² × D, memory is one more copy
of the N × D vectors (prepared: unit rows for cosine) plus one block of scores. A near-duplicate is its image's nearest
neighbour by a wide margin, so it lies in the image's own list or a neighbouring one: benchmarks/dedup_scale.py measures
the edges found against exact search.

Why not FAISS's IndexIVFFlat: it probes per query, scanning list members one query at a time, which at 100k × 512 on two
cores took 22.8 s against 4.7 s for these list-by-list matrix products (benchmarks/ivf_vs_faiss.py: same lists and
probes, every exact edge found by both; the products run at BLAS speed, and on a GPU through torch). Scores come from
`pipeline.store.scoring`, the same code as exact search, so a threshold means the same whichever method built the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.errors import LookalikeError
from pipeline.core.records import Distance
from pipeline.search.knn import SCORE_BLOCK_BYTES, KnnGraph
from pipeline.store.scoring import is_binary, prepare, similarity

TRAIN_PER_LIST = 64  # k-means training points per list
MIN_PER_LIST = 39  # fewer points per list than this: fewer lists (as FAISS advises)
ASSIGN_BLOCK = 65_536  # rows assigned to lists per matrix product


@dataclass(frozen=True)
class IvfOptions:
    """The inverted file's shape and how much of it each list's points search.

    Attributes:
        nlist: lists (k-means cells); None = round(√N), fewer below 1,521 points (39 per list).
        nprobe: lists each point's neighbours are searched in: its own and the nearest others (more: more edges
            found, slower; nlist = exact).
        spill: nearest lists each point is a candidate in (1 = its own only). Binary vectors (phash) need 2: their
            lists have no clear borders (on the shared datasets' phash vectors nprobe 8 found 15 of 18 exact edges
            ≥ 0.95 with 1, 18 of 18 with 2, at the same speed).
        niter: k-means iterations.
        seed: the k-means seed (the same seed gives the same graph).
    """

    nlist: int | None = None
    nprobe: int = 8
    spill: int = 2
    niter: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nlist is not None and self.nlist < 1:
            raise LookalikeError(f"nlist = {self.nlist}: the inverted file needs at least 1 list", setting="nlist")
        if self.nprobe < 1:
            raise LookalikeError(f"nprobe = {self.nprobe}: a point must search at least 1 list", setting="nprobe")
        if self.spill < 1:
            raise LookalikeError(f"spill = {self.spill}: a point must be a candidate in at least its own list")

    def lists_for(self, n: int) -> int:
        """The number of lists for N vectors: `nlist` (at most N), or round(√N) with ≥ 39 points per list."""
        if self.nlist is not None:
            return max(1, min(n, self.nlist))
        return max(1, min(round(math.sqrt(n)), n // MIN_PER_LIST))


def _spherical(distance: Distance) -> bool:
    """Lists by angle (inner product with unit centroids) for cosine and dot, else by Euclidean distance."""
    return distance in ("cosine", "dot")


def _closeness(x: torch.Tensor, centroids: torch.Tensor, spherical: bool) -> torch.Tensor:
    """(R, L) how close each row is to each centroid, higher = closer."""
    dots = x @ centroids.T
    return dots if spherical else 2 * dots - (centroids * centroids).sum(dim=1)


def nearest_centroids(x: torch.Tensor, centroids: torch.Tensor, spherical: bool, m: int) -> torch.Tensor:
    """(N, min(m, L)) each row's m nearest centroids, nearest first, a block of rows at a time."""
    m = min(m, len(centroids))
    starts = range(0, len(x), ASSIGN_BLOCK)
    parts = [torch.topk(_closeness(x[s : s + ASSIGN_BLOCK], centroids, spherical), m, dim=1).indices for s in starts]
    return torch.cat(parts) if parts else torch.zeros((0, m), dtype=torch.int64)


def assign_lists(x: torch.Tensor, centroids: torch.Tensor, spherical: bool) -> torch.Tensor:
    """(N,) each row's nearest centroid."""
    return nearest_centroids(x, centroids, spherical, 1)[:, 0]


def _grouped(rows: torch.Tensor, lists: torch.Tensor, nlist: int) -> tuple[torch.Tensor, ...]:
    """The rows of each list: `rows[i]` belongs to `lists[i]`."""
    order = torch.argsort(lists, stable=True)
    return torch.split(rows[order], torch.bincount(lists, minlength=nlist).tolist())


def train_lists(x: torch.Tensor, nlist: int, options: IvfOptions, spherical: bool) -> torch.Tensor:
    """(nlist, D) k-means centroids from a seeded sample of `TRAIN_PER_LIST` points per list; an emptied list is
    seeded again from a random sample point."""
    gen = torch.Generator().manual_seed(options.seed)
    pick = torch.randperm(len(x), generator=gen)[: min(len(x), TRAIN_PER_LIST * nlist)].to(x.device)
    sample = x[pick]
    centroids = sample[torch.randperm(len(sample), generator=gen)[:nlist].to(x.device)].clone()
    for _ in range(options.niter):
        lists = assign_lists(sample, centroids, spherical)
        counts = torch.bincount(lists, minlength=nlist)
        sums = torch.zeros_like(centroids).index_add_(0, lists, sample)
        centroids = sums / counts.clamp_min(1).unsqueeze(1).to(sums.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel():
            again = torch.randint(len(sample), (empty.numel(),), generator=gen).to(x.device)
            centroids[empty] = sample[again]
        if spherical:
            centroids = torch.nn.functional.normalize(centroids, dim=1)
    return centroids


def nearest_lists(centroids: torch.Tensor, nprobe: int, spherical: bool) -> torch.Tensor:
    """(L, min(nprobe, L)) for each list, itself then the lists whose centroids are closest to its centroid."""
    close = _closeness(centroids, centroids, spherical)
    close.fill_diagonal_(torch.inf)
    return torch.topk(close, min(nprobe, len(centroids)), dim=1).indices


def ivf_topk(
    vectors: np.ndarray,
    k: int,
    distance: Distance,
    options: IvfOptions | None = None,
    progress: bool = False,
    device: torch.device | None = None,
) -> KnnGraph:
    """Approximate top-k neighbours of every row among the other rows, searched list by list.

    Args:
        vectors: (N, D) float32; not modified.
        k: neighbours per row (≥ 1).
        distance: the collection's distance; scores follow `pipeline.store.scoring`.
        options: lists, probes, k-means iterations and seed (default `IvfOptions()`).
        progress: show a progress bar over lists.
        device: where to compute (a CUDA device when present); default CPU.

    Returns:
        The graph, neighbours sorted by descending score; -1 / -inf where a row's searched lists held fewer than
        k other rows.

    Raises:
        ValueError: `vectors` is not 2-D or k < 1.
    """
    if vectors.ndim != 2 or k < 1:
        raise ValueError(f"ivf_topk: need (N, D) vectors and k ≥ 1; got {vectors.shape}, {k}")
    options = options or IvfOptions()
    n = vectors.shape[0]
    indices = torch.full((n, k), -1, dtype=torch.int64)
    scores = torch.full((n, k), -torch.inf)
    if n < 2:
        return KnnGraph(indices.numpy(), scores.numpy())
    x = prepare(vectors, distance, device or torch.device("cpu"))
    binary = distance == "manhattan" and is_binary(x)
    spherical = _spherical(distance)
    centroids = train_lists(x, options.lists_for(n), options, spherical)
    nearest = nearest_centroids(x, centroids, spherical, options.spill).cpu()  # (N, spill)
    members = _grouped(torch.arange(n), nearest[:, 0], len(centroids))
    spilled = _grouped(torch.arange(n).repeat_interleave(nearest.shape[1]), nearest.flatten(), len(centroids))
    with torch.inference_mode():
        for own, near in tqdm(
            zip(members, nearest_lists(centroids, options.nprobe, spherical).tolist(), strict=True),
            total=len(members),
            desc="IVF lists",
            unit="list",
            disable=not progress,
        ):
            if own.numel():
                candidates = torch.unique(torch.cat([own, *(spilled[j] for j in near)]))  # sorted, each once
                _score_list(x, own, candidates, (distance, binary), (indices, scores))
    return KnnGraph(indices.numpy(), scores.numpy())


def _score_list(
    x: torch.Tensor,
    own: torch.Tensor,
    candidates: torch.Tensor,
    how: tuple[Distance, bool],
    out: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Top-k of one list's rows among `candidates` (sorted, holding those rows), written into `out` (indices,
    scores), a block of rows at a time so that one block of scores stays within `SCORE_BLOCK_BYTES`."""
    distance, binary = how
    indices, scores = out
    k = indices.shape[1]
    pool = x[candidates.to(x.device)]
    block = max(1, SCORE_BLOCK_BYTES // (4 * candidates.numel()))
    kk = min(k, candidates.numel())
    for start in range(0, own.numel(), block):
        rows = own[start : start + block]
        sims = similarity(x[rows.to(x.device)], pool, distance, binary)
        at = torch.arange(rows.numel(), device=sims.device)
        sims[at, torch.searchsorted(candidates, rows).to(sims.device)] = -torch.inf  # not its own neighbour
        top = torch.topk(sims, kk, dim=1)
        found = torch.isfinite(top.values).cpu()
        indices[rows, :kk] = torch.where(found, candidates[top.indices.cpu()], -1)
        scores[rows, :kk] = torch.where(found, top.values.float().cpu(), -torch.inf)
