"""Retrieval protocol: every labelled image of a collection queries the rest."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pipeline.evaluate import hit_matrix, hit_rate_at_k, mean_reciprocal_rank, precision_at_1
from pipeline.store import VectorSpec, VectorStore, where_filter


@dataclass(frozen=True)
class RetrievalMetrics:
    """Scores over queries whose label has at least one other image in the collection."""

    queries: int
    labels: int
    points: int
    precision_at_1: float
    hit_rate_at_5: float
    hit_rate_at_10: float
    mrr_at_10: float
    seconds: float


def evaluate_retrieval(
    store: VectorStore, collection: str, spec: VectorSpec, k: int = 10, batch: int = 256, progress: bool = True
) -> RetrievalMetrics:
    """Query every labelled point (itself excluded) and score labels of the top k."""
    start = time.perf_counter()
    points = [(pid, vec, payload.get("label")) for pid, vec, payload in store.scroll(collection, spec.name)]
    embedded = [(pid, vec, label) for pid, vec, label in points if vec is not None and label is not None]
    counts = Counter(label for _, _, label in embedded)
    queries = [p for p in embedded if counts[p[2]] >= 2]
    ranked: list[list[str | None]] = []
    for s in tqdm(range(0, len(queries), batch), desc="querying", unit="batch", disable=not progress):
        chunk = queries[s : s + batch]
        filters = [where_filter(None, [pid]) for pid, _, _ in chunk]
        hits = store.query(collection, spec, np.stack([v for _, v, _ in chunk]), k, filters)
        ranked += [[h.label for h in row] for row in hits]
    matrix = hit_matrix([str(label) for _, _, label in queries], ranked, k)
    return RetrievalMetrics(
        queries=len(queries),
        labels=len({label for _, _, label in queries}),
        points=len(points),
        precision_at_1=precision_at_1(matrix),
        hit_rate_at_5=hit_rate_at_k(matrix, 5),
        hit_rate_at_10=hit_rate_at_k(matrix, 10),
        mrr_at_10=mean_reciprocal_rank(matrix),
        seconds=time.perf_counter() - start,
    )
