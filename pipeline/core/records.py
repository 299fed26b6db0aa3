"""Frozen records passed between pipeline stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Distance = Literal["cosine", "euclid", "dot", "manhattan"]
UNKNOWN_VERSION = "unknown"  # encoder version of a collection that recorded none, or of an encoder declaring none
ItemStatus = Literal["ingested", "already_present", "duplicate_content", "failed", "no_face", "skipped"]


@dataclass(frozen=True)
class ImageRecord:
    """One input image as a source lists it, before it is read."""

    path: str
    label: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class HashedRecord:
    """An input whose bytes were read and hashed; `point_id` is uuid5 of the sha256."""

    record: ImageRecord
    sha256: str
    point_id: str


@dataclass(frozen=True)
class Rejection:
    """An input that could not be used, and why (one line, for people)."""

    path: str
    reason: str


@dataclass(frozen=True)
class EncodedBatch:
    """What an encoder returns for a batch.

    Attributes:
        vectors: (N, D) float32, or (N, K, D) for a multivector encoder; rows whose `ok` is False are zeros and
            must not be stored.
        ok: (N,) bool, False where the encoder could not embed the item (e.g. no face found).
        notes: per item, None or a short reason ("no face found", "no face: centre-crop fallback").
    """

    vectors: np.ndarray
    ok: np.ndarray
    notes: tuple[str | None, ...]

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        if self.ok.shape != (n,) or len(self.notes) != n:
            raise ValueError(f"EncodedBatch: {n} vectors but {self.ok.shape} ok flags, {len(self.notes)} notes")


@dataclass(frozen=True)
class Hit:
    """One search result. `score` is a similarity: higher is better, whatever the distance."""

    rank: int
    score: float
    point_id: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return str(self.payload.get("path", ""))

    @property
    def label(self) -> str | None:
        value = self.payload.get("label")
        return None if value is None else str(value)


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one input during ingest."""

    path: str
    status: ItemStatus
    reason: str = ""
    point_id: str = ""
    encoder: str = ""  # the encoder whose pass this was; empty for outcomes of hashing (unreadable, duplicate)


@dataclass(frozen=True)
class IngestSummary:
    """Counts for an ingest run; every input seen is in exactly one bucket."""

    seen: int
    ingested: int
    already_present: int
    duplicate_content: int
    no_face: int
    failed: int
    skipped: int
    seconds: float
    problems: tuple[IngestOutcome, ...] = ()
    point_ids: Mapping[str, str] = field(default_factory=dict)  # path → point id, for every input that was read
    encoder: str = ""  # the encoder of this pass (comma-separated when passes were combined)

    @property
    def images_per_second(self) -> float:
        return self.ingested / self.seconds if self.seconds > 0 else 0.0
