"""What every protocol shares: ingest the images it needs, then score through Qdrant queries."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.conventions import DEFAULT_REPORT_DIR
from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.encoders.base import Encoder
from pipeline.index.collection import IndexedCollection
from pipeline.index.ingest import encoder_vector_spec
from pipeline.store import VectorSpec, VectorStore, only_ids


@dataclass(frozen=True)
class EvalSetup:
    """The production path an evaluation runs through: encoder(s) → collection → queries.

    `fused_with` names further encoders whose vectors share the collection (one named vector each); the
    candidate protocol and `submit` then fuse all of them with `weights` (one per encoder of `all_encoders`,
    summing to 1; empty = equal), or with weights fitted on training tasks when `fit_weights`. `hubness` (β ≥ 0)
    lowers each candidate's score by β × its mean similarity to the task's other candidates, per encoder, before
    fusion (`pipeline.search.hubness`); 0 leaves the scores as Qdrant gives them.
    """

    store: VectorStore
    collection: str
    encoder: Encoder
    device: torch.device
    batch_size: int = 32
    workers: int = 2
    progress: bool = True
    report_dir: Path = DEFAULT_REPORT_DIR
    retry_missing: bool = False
    fused_with: tuple[Encoder, ...] = ()
    weights: tuple[float, ...] = ()
    fit_weights: bool = False
    hubness: float = 0.0

    @property
    def spec(self) -> VectorSpec:
        return encoder_vector_spec(self.encoder)

    @property
    def all_encoders(self) -> tuple[Encoder, ...]:
        return (self.encoder, *self.fused_with)

    @property
    def encoder_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.all_encoders)

    @property
    def fusion_weights(self) -> tuple[float, ...]:
        n = len(self.all_encoders)
        return self.weights or (1.0 / n,) * n

    @property
    def index(self) -> IndexedCollection:
        """The collection with every encoder of the setup, to fill and read back."""
        return IndexedCollection(
            self.store,
            self.collection,
            self.all_encoders,
            self.device,
            self.batch_size,
            self.workers,
            self.progress,
            self.report_dir,
            self.retry_missing,
        )

    def for_encoder(self, encoder: Encoder) -> EvalSetup:
        """The same store and collection, with one encoder only (to score its named vector alone)."""
        return replace(self, encoder=encoder, fused_with=(), weights=(), fit_weights=False)


@dataclass(frozen=True)
class EvalResult:
    """What `lookalike eval` writes as JSON and prints."""

    protocol: str
    dataset: str
    encoder: str
    collection: str
    seed: int
    counts: Mapping[str, int]
    metrics: Mapping[str, float | None]
    seconds: float
    notes: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)

    def write_json(self, path: Path) -> Path:
        """Write the result as indented JSON, creating parent folders."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=_json_default) + "\n")
        return path


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def ingest_for_eval(setup: EvalSetup, images: Sequence[ImageRecord]) -> IngestSummary:
    """Ingest (idempotently) the images a protocol needs with every encoder of the setup (`IndexedCollection`)."""
    return setup.index.ensure(images)


def fetch_vectors(setup: EvalSetup, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Stored vectors of the setup's encoder by point id; ids without a vector (no face, failed decode) are absent."""
    return setup.index.vectors(ids, setup.encoder)


def score_restricted(
    setup: EvalSetup, query_ids: Sequence[str | None], candidate_ids: Sequence[Sequence[str | None]]
) -> np.ndarray:
    """(Q, C) similarity of each query to each of its own candidates, from Qdrant queries whose filter
    restricts the search to those candidates. NaN where the query or a candidate has no vector.
    """
    n_cand = max((len(c) for c in candidate_ids), default=0)
    scores = np.full((len(query_ids), n_cand), np.nan, dtype=np.float64)
    vectors = fetch_vectors(setup, [q for q in query_ids if q])
    rows = [i for i, q in enumerate(query_ids) if q and q in vectors]
    if not rows:
        return scores
    filters = [only_ids([c for c in candidate_ids[i] if c]) for i in rows]
    query = np.stack([vectors[query_ids[i] or ""] for i in rows])
    hits = setup.store.query(setup.collection, setup.spec, query, n_cand, filters)
    for i, row_hits in zip(rows, hits, strict=True):
        by_id = {h.point_id: h.score for h in row_hits}
        scores[i, : len(candidate_ids[i])] = [by_id.get(c or "", np.nan) for c in candidate_ids[i]]
    return scores


def timed() -> float:
    """A monotonic start time for `EvalResult.seconds`."""
    return time.perf_counter()
