"""Duplicate groups over a whole collection: exact (same content hash) and near (similarity ≥ threshold).

Near tier: a k-NN graph (`pipeline.search.knn`), its edges at or above the threshold, groups = connected components.
The graph is exact (`blocked_topk`: every pair scored, time ∝ N²) or approximate: `ivf` (k-means lists over the
vectors in memory, each list searched against its nearest lists, `pipeline.search.ivf`: time ∝ N^1.5, the fastest on
one machine) or `ann` (`store_topk`
through the engine's HNSW index: one query per point, memory one page of vectors, works against a server or
cluster); `auto` picks by size and by what is installed.
Exact tier: the copies of each point that ingest recorded, read by `pipeline.dedup.table` (with the point table
and the vectors that score pairs); here the two tiers' groups, their pairs and the counts.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import LookalikeError
from pipeline.core.records import Distance
from pipeline.dedup.graph import IN_MEMORY, DedupMethod, GraphOptions, choose_method
from pipeline.dedup.groups import DupPair, Member, PointTable, assemble_groups, connected_groups, group_pairs
from pipeline.dedup.table import exact_copies, load_points, score_fn, vector_lookup
from pipeline.search.ivf import ivf_topk
from pipeline.search.knn import (
    EdgeRecall,
    Edges,
    KnnGraph,
    StoreSearch,
    auto_block_size,
    blocked_topk,
    edge_recall,
    store_topk,
    threshold_edges,
)
from pipeline.store import VectorSpec, VectorStore


@dataclass(frozen=True)
class DedupConfig:
    """What `dedup` searches and how.

    Attributes:
        collection: the collection to scan.
        threshold: similarity (Qdrant's score for the collection's distance) at or above which two images
            are near-duplicates.
        graph: how the k-NN graph is built.
        ingest_report: legacy extra source for the exact tier: an ingest CSV whose `duplicate_content` rows name
            byte-identical files (for points ingested before payloads kept `duplicate_paths`); None or missing
            = the payloads only.
        progress: show progress bars.
    """

    collection: str
    threshold: float
    graph: GraphOptions = field(default_factory=GraphOptions)
    ingest_report: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class DedupStats:
    """Counts and timings for summary.json."""

    points: int
    points_with_vector: int
    exact_copy_files: int
    near_pairs: int
    groups: int
    files_in_groups: int
    files_to_move: int
    bytes_reclaimable: int
    missing_files: int
    largest_group: int
    chained_members: int  # near members whose own score to the keeper is below the threshold
    method: str
    block_size: int | None
    knn_seconds: float
    seconds: float
    ef: int | None = None
    index_seconds: float = 0.0  # ann: building a missing HNSW index first
    recall: EdgeRecall | None = None  # ann, ivf with recall_sample: measured against exact on a sample
    nlist: int | None = None  # ivf: the inverted file's lists
    nprobe: int | None = None  # ivf: lists each query scanned


@dataclass(frozen=True)
class DedupResult:
    """Groups (largest first), their pairs, and the counts."""

    config: DedupConfig
    spec: VectorSpec
    members: tuple[Member, ...]
    pairs: tuple[DupPair, ...]
    stats: DedupStats


def memory_knn(
    config: DedupConfig, table: PointTable, distance: Distance, device: torch.device, method: DedupMethod
) -> KnnGraph:
    """The k-NN graph over the table's loaded vectors, exact (blocked top-k) or ivf; rows without a vector take no
    part."""
    assert table.vectors is not None
    rows = np.flatnonzero(table.has_vector)
    g = config.graph
    vectors = table.vectors if rows.size == len(table) else table.vectors[rows]  # no copy when every row has one
    if method == DedupMethod.IVF:
        sub = ivf_topk(vectors, g.k, distance, g.ivf, config.progress, device)
    else:
        sub = blocked_topk(vectors, g.k, distance, g.block_size, device, config.progress)
    indices = np.full((len(table), config.graph.k), -1, dtype=np.int64)
    scores = np.full((len(table), config.graph.k), -np.inf, dtype=np.float32)
    indices[rows] = np.where(sub.indices >= 0, rows[np.maximum(sub.indices, 0)], -1)
    scores[rows] = sub.scores
    return KnnGraph(indices, scores)


@dataclass(frozen=True)
class NearGraph:
    """The thresholded near-duplicate edges, how long they took, and (ann, when asked) their measured recall."""

    edges: Edges
    knn_seconds: float
    index_seconds: float = 0.0
    recall: EdgeRecall | None = None


def sampled_recall(
    store: VectorStore, config: DedupConfig, spec: VectorSpec, table: PointTable, edges: Edges, device: torch.device
) -> EdgeRecall:
    """Edge recall of `edges` against the exact neighbours of `recall_sample` random points with a vector (seed 0):
    scored in memory when the table holds the vectors, else by the engine scoring every point for each."""
    candidates = np.flatnonzero(table.has_vector)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(candidates, size=min(config.graph.recall_sample, candidates.size), replace=False))
    if table.vectors is None:
        search = StoreSearch(exact=True, progress=config.progress)
        exact = store_topk(store, config.collection, spec, table.ids, config.graph.k, rows=sample, search=search)
        return edge_recall(sample, exact, edges, config.threshold)
    at = np.searchsorted(candidates, sample)  # the sample's rows among the rows with a vector
    sub = blocked_topk(table.vectors[candidates], config.graph.k, spec.distance, device=device, rows=at)
    exact = KnnGraph(np.where(sub.indices >= 0, candidates[np.maximum(sub.indices, 0)], -1), sub.scores)
    return edge_recall(sample, exact, edges, config.threshold)


def near_graph(
    store: VectorStore,
    config: DedupConfig,
    spec: VectorSpec,
    table: PointTable,
    device: torch.device,
    method: DedupMethod = DedupMethod.EXACT,
) -> NearGraph:
    """Near-duplicate edges: over the table's vectors (exact, ivf), or through the store's HNSW index (ann; the
    index is built first if an interrupted ingest left none); recall measured on a sample when asked (ivf, ann)."""
    start = time.perf_counter()
    index_seconds = 0.0
    if method in IN_MEMORY:
        graph = memory_knn(config, table, spec.distance, device, method)
    else:
        store.build_index(config.collection)
        index_seconds = time.perf_counter() - start
        search = StoreSearch(ef=config.graph.ef, progress=config.progress)
        graph = store_topk(store, config.collection, spec, table.ids, config.graph.k, search=search)
    edges = threshold_edges(graph, config.threshold)
    knn_seconds = time.perf_counter() - start - index_seconds
    sampled = config.graph.recall_sample > 0 and method != DedupMethod.EXACT
    recall = sampled_recall(store, config, spec, table, edges, device) if sampled else None
    return NearGraph(edges, knn_seconds, index_seconds, recall)


def find_duplicates(store: VectorStore, config: DedupConfig, spec: VectorSpec, device: torch.device) -> DedupResult:
    """Exact and near-duplicate groups of a collection, each with a suggested keeper; nothing is changed.

    Args:
        store: the store holding the collection.
        config: threshold, k, method, legacy ingest report.
        spec: the named vector to compare (`search.collection_vector`).
        device: where blocked top-k runs (CUDA when present).

    Returns:
        The groups' members, the pairs that joined them, and counts.

    Raises:
        LookalikeError: the vector is a multivector, or the ingest report is malformed.
    """
    if spec.multivector:
        raise LookalikeError(
            f"{spec.name} is a multivector (late interaction): dedup compares single vectors; "
            "ingest with a single-vector encoder (e.g. siamese@DIR rather than siamese:local@DIR)"
        )
    start = time.perf_counter()
    method = choose_method(config.graph, store.count(config.collection), spec.dim)
    table = load_points(store, config.collection, spec, with_vectors=method in IN_MEMORY)
    near = near_graph(store, config, spec, table, device, method)
    edges = near.edges
    copies = exact_copies(table, config.ingest_report)
    score = score_fn(vector_lookup(store, config.collection, spec, table), spec)
    members, missing = assemble_groups(table, connected_groups(len(table), edges, copies.keys()), copies, score)
    pairs = group_pairs(members, edges, table, score)
    to_move = [m for m in members if not m.keeper]
    nlist = config.graph.ivf.lists_for(int(table.has_vector.sum())) if method == DedupMethod.IVF else None
    stats = DedupStats(
        points=len(table),
        points_with_vector=int(table.has_vector.sum()),
        exact_copy_files=sum(len(files) for files in copies.values()),
        near_pairs=sum(p.tier == "near" for p in pairs),
        groups=len({m.group_id for m in members}),
        files_in_groups=len(members),
        files_to_move=len(to_move),
        bytes_reclaimable=sum(m.bytes for m in to_move),
        missing_files=missing,
        largest_group=max(Counter(m.group_id for m in members).values(), default=0),
        chained_members=sum(m.tier == "near" and not m.score >= config.threshold for m in members),
        method=method.value,
        block_size=(config.graph.block_size or auto_block_size(len(table))) if method == DedupMethod.EXACT else None,
        knn_seconds=near.knn_seconds,
        seconds=time.perf_counter() - start,
        ef=config.graph.ef if method == DedupMethod.ANN else None,
        index_seconds=near.index_seconds,
        recall=near.recall,
        nlist=nlist,
        nprobe=None if nlist is None else min(config.graph.ivf.nprobe, nlist),
    )
    return DedupResult(config, spec, tuple(members), tuple(pairs), stats)
