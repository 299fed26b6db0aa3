"""What every protocol shares: ingest the images it needs, then score through Qdrant queries."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.encoders.base import Encoder
from pipeline.index.collection import IndexedCollection
from pipeline.index.ingest import encoder_vector_spec
from pipeline.store import VectorSpec, VectorStore, only_ids


@dataclass(frozen=True)
class Scoring:
    """How a protocol combines and corrects scores.

    Attributes:
        weights: one per encoder of the setup, summing to 1, for fused scores; empty = equal.
        fit_weights: fit the fusion weights on training tasks instead.
        hubness: β ≥ 0 lowers each candidate's score by β × its mean similarity to the task's other candidates, per
            encoder, before fusion (`pipeline.search.hubness`); 0 leaves the scores as Qdrant gives them.
    """

    weights: tuple[float, ...] = ()
    fit_weights: bool = False
    hubness: float = 0.0


@dataclass(frozen=True)
class EvalSetup:
    """The production path an evaluation runs through: the indexed collection (its store, name, encoders and how
    it is filled) and how scores are combined. The first encoder is the setup's own; further ones share the
    collection (one named vector each), and the candidate protocol and `submit` fuse all of them."""

    index: IndexedCollection
    scoring: Scoring = field(default_factory=Scoring)

    @property
    def store(self) -> VectorStore:
        return self.index.store

    @property
    def collection(self) -> str:
        return self.index.name

    @property
    def encoder(self) -> Encoder:
        return self.index.encoders[0]

    @property
    def report_dir(self) -> Path:
        return self.index.report_dir

    @property
    def progress(self) -> bool:
        return self.index.progress

    @property
    def hubness(self) -> float:
        return self.scoring.hubness

    @property
    def weights(self) -> tuple[float, ...]:
        return self.scoring.weights

    @property
    def fit_weights(self) -> bool:
        return self.scoring.fit_weights

    @property
    def spec(self) -> VectorSpec:
        return encoder_vector_spec(self.encoder)

    @property
    def all_encoders(self) -> tuple[Encoder, ...]:
        return self.index.encoders

    @property
    def encoder_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.all_encoders)

    @property
    def fusion_weights(self) -> tuple[float, ...]:
        n = len(self.all_encoders)
        return self.weights or (1.0 / n,) * n

    def for_encoder(self, encoder: Encoder) -> EvalSetup:
        """The same store and collection, with one encoder only (to score its named vector alone)."""
        return EvalSetup(replace(self.index, encoders=(encoder,)), Scoring(hubness=self.hubness))

    def with_hubness(self, hubness: float) -> EvalSetup:
        """The same setup with another hubness correction β."""
        return replace(self, scoring=replace(self.scoring, hubness=hubness))


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
