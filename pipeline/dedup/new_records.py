"""The records of `dedup --new`: what it is asked (`NewRequest`) and what it says of each listed entry of the new
folder (the statuses, `NewFile`), shared by its steps (`new_exact`, `new_near`) and the check (`incremental`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.core.errors import LookalikeError
from pipeline.core.files import display_path
from pipeline.dedup.graph import GraphOptions
from pipeline.dedup.run import ThresholdChoice
from pipeline.index.embed import EmbedConfig

NewStatus = Literal["exact", "near", "within_new", "unique", "indexed", "skipped", "failed"]
STATUSES: tuple[NewStatus, ...] = ("exact", "near", "within_new", "unique", "indexed", "skipped", "failed")


@dataclass(frozen=True)
class NewFile:
    """What one listed entry of the new folder is.

    Attributes:
        path: the file as listed, made absolute (display form: odd bytes of a non-UTF-8 name escaped).
        status: see `pipeline.dedup.incremental`'s module docstring.
        match_path: the file it duplicates: an indexed point's stored path (exact, near, indexed when that is
            another file) or another new file (within_new); "" otherwise.
        match_point_id: the indexed point it duplicates (exact, near, indexed); "" otherwise.
        score: similarity to the match (the score `query` prints; 1.0 for the same bytes); None without a match.
        reason: why, for exact, indexed, within_new, skipped and failed.
    """

    path: str
    status: NewStatus
    match_path: str = ""
    match_point_id: str = ""
    score: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class NewRequest:
    """What `dedup --new` was asked for.

    Attributes:
        collection: the indexed collection to check against (never written to).
        source: the folder of new images (or a .csv/.parquet manifest, as ingest reads it).
        out: where new-duplicates.csv/.parquet and summary.json go.
        choice: a fixed threshold, or a precision calibrated on labelled pairs (as `dedup`).
        graph: k neighbours per new image; how the store is searched (`method`: exact, ann = the HNSW index with
            beam `ef`, auto = `choose_search`); the block size of the exact top-k among the new images.
            `recall_sample` does not apply (no graph is built).
        encoder: which of the collection's vectors (None: its only one).
        embed: batching and decode workers for embedding the new images.
    """

    collection: str
    source: Path
    out: Path
    choice: ThresholdChoice
    graph: GraphOptions = field(default_factory=GraphOptions)
    encoder: str | None = None
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.graph.recall_sample:
            raise LookalikeError(
                "a recall sample measures a whole collection's k-NN graph; checking new files builds none",
                setting="recall_sample",
            )


def shown_path(path: str) -> str:
    """The path made absolute (not resolved: two symlinks to one file stay two entries), in display form."""
    return display_path(os.path.abspath(path))
