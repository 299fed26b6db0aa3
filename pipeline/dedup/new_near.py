"""`dedup --new`'s near tier: embed one file per new content, search the store for indexed points at or above the
threshold (exact or HNSW, `choose_search`), then the exact top-k among the new vectors for within-new pairs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.errors import LookalikeError
from pipeline.core.records import Distance, HashedRecord
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.groups import keeper_rank
from pipeline.dedup.new_records import NewFile, NewRequest, shown_path
from pipeline.encoders.base import Encoder
from pipeline.index.embed import embed_paths
from pipeline.search.knn import blocked_topk
from pipeline.store import VectorSpec, VectorStore

QUERY_PAGE = 512  # new vectors per store request
# auto: exact store search while new × indexed × dim stays under this; benchmarks/dedup_new.py measured 1,000 ×
# 100k × 64 in 2.9 s on 2 shared cores (and HNSW at ef 32 missing 1 of 250 planted near copies), so ≈ 7 s at most
AUTO_EXACT_MAX_WORK = 16 * 10**9
_WITHIN = "similar to another new file that ranks before it as a keeper (more pixels, larger file, or path)"


@dataclass(frozen=True)
class EmbeddedNew:
    """The new files embedded for the near tier: row i is `paths[i]`, `vectors[i]` (M, D), keeper `ranks[i]`."""

    paths: tuple[str, ...]
    vectors: np.ndarray
    ranks: tuple[tuple[int, int, int, int, str], ...]


def embed_new(
    todo: Sequence[HashedRecord],
    spec: VectorSpec,
    encoder: Callable[[], Encoder],
    device: torch.device,
    request: NewRequest,
) -> tuple[EmbeddedNew, list[NewFile]]:
    """Embed one file per new content; a file that cannot be decoded or embedded fails with the reason."""
    paths: list[str] = []
    vectors: list[np.ndarray] = []
    ranks: list[tuple[int, int, int, int, str]] = []
    failed: list[NewFile] = []
    if todo:
        bar = tqdm(total=len(todo), desc="embedding new", unit="img", disable=not request.progress)
        with bar:
            for items in embed_paths([h.record.path for h in todo], encoder(), device, request.embed):
                for item in items:
                    path = shown_path(todo[item.index].record.path)
                    if item.vector is None:
                        reason = item.reason if item.status == "failed" else f"not embedded: {item.reason}"
                        failed.append(NewFile(path, "failed", reason=reason))
                        continue
                    paths.append(path)
                    vectors.append(np.asarray(item.vector, dtype=np.float32))
                    ranks.append(keeper_rank(item.width * item.height, _size(path), True, path))
                bar.update(len(items))
    matrix = np.stack(vectors) if vectors else np.zeros((0, spec.dim), dtype=np.float32)  # (M, D)
    return EmbeddedNew(tuple(paths), matrix, tuple(ranks)), failed


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def choose_search(graph: GraphOptions, new: int, indexed: int, dim: int) -> DedupMethod:
    """How the store is searched for the new vectors: `graph.method` when it is exact or ann; for auto, exact while
    new × indexed × dim ≤ `AUTO_EXACT_MAX_WORK` (every duplicate is then found, in seconds), else the HNSW index
    (time ∝ new × log indexed; a duplicate may be missed: a larger beam `ef` finds more).

    Raises:
        LookalikeError: method ivf, which builds a graph over the whole collection rather than searching it.
    """
    if graph.method == DedupMethod.IVF:
        raise LookalikeError(
            "checking new images searches the indexed collection for each; method ivf builds a graph over the "
            "whole collection instead: use auto, exact or ann",
            setting="method",
        )
    if graph.method != DedupMethod.AUTO:
        return graph.method
    return DedupMethod.EXACT if new * indexed * dim <= AUTO_EXACT_MAX_WORK else DedupMethod.ANN


def near_tier(
    store: VectorStore,
    request: NewRequest,
    spec: VectorSpec,
    embedded: EmbeddedNew,
    how: tuple[float, DedupMethod],
    device: torch.device,
) -> list[NewFile]:
    """near (an indexed point ≥ threshold among the k nearest), else within_new (a better-ranked new file ≥
    threshold), else unique; `how` is the threshold and the store search method."""
    threshold, method = how
    graph = dataclasses.replace(request.graph, method=method)
    indexed = nearest_indexed(store, request.collection, spec, embedded.vectors, graph, threshold)
    stored = store.payloads(request.collection, list({hit[0] for hit in indexed if hit}), ("path",))
    within = nearest_earlier(embedded.vectors, embedded.ranks, spec.distance, request.graph, threshold, device)
    files = []
    for i, path in enumerate(embedded.paths):
        if (hit := indexed[i]) is not None:
            files.append(NewFile(path, "near", str(stored.get(hit[0], {}).get("path", "")), hit[0], hit[1]))
        elif (other := within[i]) is not None:
            files.append(NewFile(path, "within_new", embedded.paths[other[0]], "", other[1], _WITHIN))
        else:
            files.append(NewFile(path, "unique"))
    return files


def nearest_indexed(
    store: VectorStore, collection: str, spec: VectorSpec, vectors: np.ndarray, graph: GraphOptions, threshold: float
) -> list[tuple[str, float] | None]:
    """For each row of (M, D) `vectors`, the best indexed (point id, score) if it is at least `threshold`.

    One batched query per `QUERY_PAGE` rows, top `graph.k` each: scoring every point with `graph.method` exact,
    else through the HNSW index with beam `graph.ef`.
    """
    exact = graph.method == DedupMethod.EXACT
    best: list[tuple[str, float] | None] = []
    for start in range(0, len(vectors), QUERY_PAGE):
        rows = store.nearest(collection, spec, vectors[start : start + QUERY_PAGE], graph.k, exact=exact, ef=graph.ef)
        best += [row[0] if row and row[0][1] >= threshold else None for row in rows]
    return best


def nearest_earlier(
    vectors: np.ndarray,
    ranks: Sequence[tuple[int, int, int, int, str]],
    distance: Distance,
    graph: GraphOptions,
    threshold: float,
    device: torch.device,
) -> list[tuple[int, float] | None]:
    """For each row of (M, D) `vectors`, its most similar row that ranks before it (lower `ranks`) among its exact
    top `graph.k`, as (row, score), if the score is at least `threshold`: the first file of a near pair is never
    flagged, so nothing is lost if every flagged file is removed."""
    if len(vectors) < 2:
        return [None] * len(vectors)
    knn = blocked_topk(vectors, graph.k, distance, graph.block_size, device)  # (M, k), best first
    found: list[tuple[int, float] | None] = []
    for i in range(len(vectors)):
        pairs = zip(knn.indices[i].tolist(), knn.scores[i].tolist(), strict=True)
        earlier = (
            (j, score) for j, score in pairs if j >= 0 and score >= threshold and ranks[j] < ranks[i]
        )  # best first
        found.append(next(earlier, None))
    return found
