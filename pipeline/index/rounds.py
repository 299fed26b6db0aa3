"""One ingest round's steps, the same for every `Execution`: hashing the round, then each encoder's pass.

`Hashing` hashes a round's files, sets aside unreadable files and duplicates, and records each content's paths;
`EncoderPass` skips what its encoder stored already, embeds the rest and writes each batch as it comes, counting
every outcome. `Execution` is where their heavy stages run (this process, or the Ray pipeline); `run_ingest` in
`pipeline.index.ingest` drives the rounds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from tqdm import tqdm

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import vector_name
from pipeline.core.errors import LookalikeError
from pipeline.core.records import HashedRecord, ImageRecord, IngestOutcome
from pipeline.encoders.base import Encoder
from pipeline.index.hashing import FileHash
from pipeline.index.prepared import EmbeddedItem
from pipeline.index.stages import (
    ContentPaths,
    Tally,
    content_paths,
    duplicate_updates,
    hashed_or_failed,
    label_updates,
    split_duplicates,
    store_batch,
)
from pipeline.store import VectorStore


class Execution(Protocol):
    """Where an ingest's heavy stages run; `run_ingest` decides everything else."""

    @property
    def round_files(self) -> int:
        """Files read, hashed, checked against the store and embedded before the next are read."""
        ...

    def hash(self, records: Sequence[ImageRecord]) -> Iterable[FileHash]:
        """`hash_file` of each record, in the records' order."""
        ...

    def embed(self, paths: Sequence[str], encoder: Encoder) -> Iterable[list[EmbeddedItem]]:
        """Decode, prepare and encode `paths` batch by batch: each index of `paths` once, batches in any order."""
        ...


class Hashing:
    """The run's hashing, round by round: the first path of each content (by point id), and the files whose
    content is not embedded (unreadable, or a duplicate)."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.seen: dict[str, str] = {}
        self.unreadable: list[IngestOutcome] = []
        self.duplicates: list[IngestOutcome] = []
        self.seconds = 0.0

    def run(
        self, records: Sequence[ImageRecord], execution: Execution, store: VectorStore, collection: str
    ) -> tuple[list[HashedRecord], dict[str, ContentPaths]]:
        """Hash one round; a file with the content of one seen before (this round or an earlier one) is a
        duplicate, added to the stored point's `duplicate_paths` where that point exists.

        Returns:
            The round's first file of each content not seen before, and each of the round's contents' paths.
        """
        start = time.perf_counter()
        hashed: list[HashedRecord] = []
        for record, result in zip(records, execution.hash(records), strict=True):
            one = hashed_or_failed(record, result)
            if isinstance(one, HashedRecord):
                hashed.append(one)
            else:
                self.unreadable.append(one)
            self.bar.update()
        unique, duplicates = split_duplicates(hashed, self.seen)
        ids = list(dict.fromkeys(h.point_id for h in hashed))
        stored = store.payloads(collection, ids, ("path", "duplicate_paths"))
        paths = content_paths(hashed, stored)
        store.set_payloads(collection, duplicate_updates(paths, stored))  # new points get theirs when written
        self.duplicates += duplicates
        self.seconds += time.perf_counter() - start
        return unique, paths


class EncoderPass:
    """One encoder's pass, round by round: what it stored already is skipped, the rest embedded and written, and
    every outcome counted (`tally`)."""

    def __init__(self, encoder: Encoder, point_ids: bool, bar: tqdm) -> None:
        self.encoder = encoder
        self.bar = bar
        self.tally = Tally(encoder.name, point_ids)
        self.seconds = 0.0

    def run(
        self,
        unique: Sequence[HashedRecord],
        paths: Mapping[str, ContentPaths],
        store: VectorStore,
        config: IngestConfig,
        execution: Execution,
    ) -> None:
        """One round: skip what this encoder stored already (one batched check), embed the rest, write each
        batch as it comes."""
        start = time.perf_counter()
        name = self.encoder.name
        ids = [h.point_id for h in unique]
        present = store.present_ids(config.collection, ids, vector_name(name), retry_missing=config.retry_missing)
        self.tally.add(
            IngestOutcome(h.record.path, "already_present", "", h.point_id, name)
            for h in unique
            if h.point_id in present
        )
        store.set_payloads(config.collection, label_updates(h for h in unique if h.point_id in present))
        todo = [h for h in unique if h.point_id not in present]
        if todo:  # decode workers are started for each round that has work
            self._embed(todo, paths, store, config.collection, execution)
        self.seconds += time.perf_counter() - start

    def _embed(
        self,
        todo: Sequence[HashedRecord],
        paths: Mapping[str, ContentPaths],
        store: VectorStore,
        collection: str,
        execution: Execution,
    ) -> None:
        """Write each batch as it comes; account the round's outcomes in input order once all are in."""
        self.bar.total += len(todo)
        self.bar.refresh()
        done: dict[int, IngestOutcome] = {}
        for batch in execution.embed([h.record.path for h in todo], self.encoder):
            items = [item for item in batch if item.index not in done]  # a batch given twice (a retry) counts once
            outcomes = store_batch(store, collection, self.encoder.name, todo, items, paths)
            done.update(zip((item.index for item in items), outcomes, strict=True))
            self.bar.update(len(items))
        if len(done) != len(todo):
            lost = [todo[i].record.path for i in range(len(todo)) if i not in done]
            raise LookalikeError(f"{len(lost)} file(s) were sent to embed and never came back, e.g. {lost[0]!r}")
        self.tally.add(done[i] for i in range(len(todo)))
