"""How dedup builds its k-NN graph: the methods (exact, ivf, ann, auto), their options, and auto's choice by size.

The graphs themselves are in `pipeline.search` (`knn.blocked_topk`, `ivf.ivf_topk`, `knn.store_topk`); measured
against each other by benchmarks/dedup_scale.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.core.errors import LookalikeError
from pipeline.search.ivf import IvfOptions


class DedupMethod(StrEnum):
    """How the k-NN graph is built: exact (every pair), ivf (k-means lists, in memory), ann (the store's HNSW index),
    or auto."""

    AUTO = "auto"
    EXACT = "exact"
    IVF = "ivf"
    ANN = "ann"


IN_MEMORY = (DedupMethod.EXACT, DedupMethod.IVF)  # the methods that load every vector into this process


METHOD_ALIASES = {"blocked": DedupMethod.EXACT, "qdrant": DedupMethod.ANN}  # the names before `exact` / `ann`
# auto: approximate from here (exact grows as N²: ≈ 13 s at 50k × 128 on 2 shared cores, 51 s at 100k; below this
# it is seconds and finds every edge). benchmarks/dedup_scale.py measures both approximate methods against it.
AUTO_ANN_MIN_POINTS = 50_000
AUTO_MEMORY_MAX_BYTES = 4 * 2**30  # auto: in memory only while the vectors take at most 4 GiB (2M × 512 float32)


def parse_method(name: str) -> DedupMethod:
    """`auto`, `exact`, `ivf`, `ann`, or the older names `blocked` (= exact) and `qdrant` (= ann).

    Raises:
        LookalikeError: any other name.
    """
    if name in METHOD_ALIASES:
        return METHOD_ALIASES[name]
    try:
        return DedupMethod(name)
    except ValueError:
        raise LookalikeError(f"dedup method {name!r}: expected auto, exact, ivf or ann", setting="method") from None


@dataclass(frozen=True)
class GraphOptions:
    """How the k-NN graph behind the near tier is built.

    Attributes:
        k: neighbours per image; a group grows beyond k + 1 only through chains.
        method: exact (blocked top-k in memory), ivf (an inverted file of k-means lists, in memory), ann (one HNSW
            query per point through the store), or auto (exact below `AUTO_ANN_MIN_POINTS` points; above, ivf while
            the vectors take at most 4 GiB, else ann).
        block_size: exact: rows per block; None = a 256 MiB score block.
        ef: ann: the HNSW search beam (default 64: a near-duplicate is its image's nearest neighbour by a wide
            margin, which a narrow beam finds; benchmarks/dedup_scale.py measures the edges it finds).
        nprobe: ivf: lists each point's neighbours are searched in (its own and the nearest others).
        nlist: ivf: lists in the inverted file; None = √N.
        recall_sample: ann, ivf: also find the exact neighbours of this many random points and report the share of
            their exact edges the approximate graph found; 0 = don't.
    """

    k: int = 10
    method: DedupMethod = DedupMethod.AUTO
    block_size: int | None = None
    ef: int = 64
    recall_sample: int = 0
    nprobe: int = IvfOptions.nprobe
    nlist: int | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise LookalikeError(f"k = {self.k}: need at least 1 neighbour per image", setting="k")
        if self.block_size is not None and self.block_size < 1:
            raise LookalikeError(f"block size {self.block_size}: must be at least 1 row", setting="block_size")
        if self.ef < 1:
            raise LookalikeError(f"ef = {self.ef}: the HNSW search beam must be at least 1", setting="ef")
        if self.recall_sample < 0:
            raise LookalikeError(
                f"recall sample {self.recall_sample}: must be 0 (off) or more points", setting="recall_sample"
            )
        IvfOptions(nlist=self.nlist, nprobe=self.nprobe)  # refuses a bad nprobe or nlist

    @property
    def ivf(self) -> IvfOptions:
        """The inverted file's options (`--method ivf`)."""
        return IvfOptions(nlist=self.nlist, nprobe=self.nprobe)


def choose_method(graph: GraphOptions, n: int, dim: int) -> DedupMethod:
    """`auto` → exact below `AUTO_ANN_MIN_POINTS` points; from there ivf while the (N, D) float32 vectors fit in
    4 GiB, ann beyond (never all vectors in memory)."""
    if graph.method != DedupMethod.AUTO:
        return graph.method
    if n * dim * 4 > AUTO_MEMORY_MAX_BYTES:
        return DedupMethod.ANN
    return DedupMethod.EXACT if n < AUTO_ANN_MIN_POINTS else DedupMethod.IVF
