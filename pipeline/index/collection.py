"""A collection kept filled for a fixed set of encoders: what evaluation and training need from an index.

`ensure(images)` ingests whatever is missing (idempotent: content-hashed point ids), `vectors(ids)` reads stored
vectors back by point id. The collection doubles as an on-disk cache of embeddings, keyed by encoder (the named
vector) and content (the point id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import DEFAULT_REPORT_DIR, ingest_report_path
from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.encoders.base import Encoder
from pipeline.index.ingest import combine_summaries, encoder_vector_spec, ingest_all
from pipeline.index.sources import SourceListing
from pipeline.store import VectorStore


@dataclass(frozen=True)
class IndexedCollection:
    """Collection `name` in `store`, holding one named vector per encoder of `encoders`."""

    store: VectorStore
    name: str
    encoders: tuple[Encoder, ...]
    device: torch.device
    batch_size: int = 32
    workers: int = 2
    progress: bool = True
    report_dir: Path = DEFAULT_REPORT_DIR
    retry_missing: bool = False

    def ensure(self, images: Sequence[ImageRecord]) -> IngestSummary:
        """Ingest (idempotently) `images` with every encoder; duplicate paths are listed once. With several encoders
        the counts are summed over their passes."""
        unique = tuple({r.path: r for r in images}.values())
        config = IngestConfig(
            self.name,
            self.batch_size,
            self.workers,
            report_path=ingest_report_path(self.name, self.report_dir),
            progress=self.progress,
            retry_missing=self.retry_missing,
        )
        summaries = ingest_all(SourceListing(unique), self.encoders, self.store, config, self.device)
        return summaries[0] if len(summaries) == 1 else combine_summaries(summaries)

    def vectors(self, ids: Sequence[str], encoder: Encoder | None = None, batch: int = 512) -> dict[str, np.ndarray]:
        """Stored vectors of `encoder` (default: the first) by point id; ids without one (no face, failed decode)
        are absent."""
        spec = encoder_vector_spec(encoder or self.encoders[0])
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), batch):
            found = self.store.get_points(self.name, unique[start : start + batch], spec.name)
            out.update({pid: vec for pid, (vec, _) in found.items() if vec is not None})
        return out
