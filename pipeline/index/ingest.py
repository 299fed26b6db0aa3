"""Ingest: source listing → content hashes → skip what is stored → embed → batched writes → summary.

A collection may hold several encoders' vectors (one named vector each): `ingest_all` hashes each file once, then
each encoder's pass adds its vectors to the points without touching the others'. The source is read in rounds of
`ROUND_FILES` files, each hashed, embedded and written before the next is read, so a large folder is never held
whole: what grows with the source is a point id and a path per distinct content (to find duplicates), the problems
(the report's rows), and, where asked for, each input's point id.

Byte-identical files share one point (its id is the content hash). The point's payload `path` is the first file
ingested with that content; every other file with the same bytes, from this run or any earlier one, is kept in its
payload list `duplicate_paths`, which is what `dedup`'s exact tier reads.

Every entry of the listing ends in exactly one outcome: the source's own failures (folders it could not list,
manifest rows without a path) and skips come first, then files that cannot be read as regular files (FIFOs, broken
or looping symlinks) fail at hashing without blocking, and the rest are embedded or fail at decoding with a reason.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm import tqdm

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import vector_name
from pipeline.core.errors import ImageDecodeError, LookalikeError
from pipeline.core.files import display_path, sha256_stream
from pipeline.core.images import open_regular_file
from pipeline.core.records import HashedRecord, ImageRecord, IngestOutcome, IngestSummary, ItemStatus
from pipeline.encoders.base import Encoder, encoder_version, is_multivector
from pipeline.index.embed import EmbedConfig, EmbeddedItem, embed_paths
from pipeline.index.sources import SourceListing, SourceStream
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for

ROUND_FILES = 8192  # files hashed, checked against the store and embedded before the next are read
_STATUSES = ("ingested", "already_present", "duplicate_content", "no_face", "failed", "skipped")
_DONE = ("ingested", "already_present")  # every other outcome is a problem, with a reason in the report


def encoder_vector_spec(encoder: Encoder) -> VectorSpec:
    """The named vector an encoder writes into a collection."""
    return VectorSpec(vector_name(encoder.name), encoder.dim, encoder.distance, is_multivector(encoder))


def _hash_one(record: ImageRecord) -> HashedRecord | IngestOutcome:
    """Hash a regular file; anything else (FIFO, folder, broken or looping symlink) fails without being read."""
    try:
        with open_regular_file(record.path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return IngestOutcome(record.path, "failed", "empty file (0 bytes)")
            sha = sha256_stream(fh)
    except ImageDecodeError as e:
        return IngestOutcome(record.path, "failed", str(e))
    except OSError as e:  # a read error after opening
        return IngestOutcome(record.path, "failed", f"unreadable: {e.strerror or e}")
    return HashedRecord(record, sha, point_id_for(sha))


def hash_records(
    records: Sequence[ImageRecord], pool: Executor, bar: tqdm | None = None
) -> tuple[list[HashedRecord], list[IngestOutcome]]:
    """Hash every file on `pool` (threads: hashing is I/O bound and hashlib releases the GIL).

    Returns:
        The hashed records in input order, and an outcome for each file that could not be read.
    """
    hashed: list[HashedRecord] = []
    failed: list[IngestOutcome] = []
    for result in pool.map(_hash_one, records):
        if isinstance(result, HashedRecord):
            hashed.append(result)
        else:
            failed.append(result)
        if bar is not None:
            bar.update()
    return hashed, failed


def _split_duplicates(
    hashed: Sequence[HashedRecord], seen: dict[str, str]
) -> tuple[list[HashedRecord], list[IngestOutcome]]:
    """The first file of each content, and the others as duplicates of it; `seen` (point id → first path, kept
    between rounds) is updated."""
    unique: list[HashedRecord] = []
    duplicates: list[IngestOutcome] = []
    for h in hashed:
        if h.point_id in seen:
            reason = f"same content as {seen[h.point_id]}"
            duplicates.append(IngestOutcome(h.record.path, "duplicate_content", reason, h.point_id))
        else:
            seen[h.point_id] = h.record.path
            unique.append(h)
    return unique, duplicates


@dataclass(frozen=True)
class ContentPaths:
    """Every file one point (one content) was ingested from: the stored `path` and the others with its bytes."""

    path: str
    duplicates: tuple[str, ...] = ()


def content_paths(hashed: Sequence[HashedRecord], stored: Mapping[str, Mapping[str, Any]]) -> dict[str, ContentPaths]:
    """Each point's files once this run is stored, by point id.

    The stored `path` stays the point's path (a new point takes this run's first file); every other resolved path
    with the same bytes, recorded by an earlier run or seen in this one, is a duplicate, once, in first-seen order.
    Paths are stored as `display_path` gives them (a name that is not UTF-8 has its odd bytes escaped as `\\xNN`).

    Args:
        hashed: this run's files, duplicates included.
        stored: the `path` and `duplicate_paths` payload fields of the points already stored, by id.
    """
    seen: dict[str, list[str]] = {}
    for h in hashed:
        seen.setdefault(h.point_id, []).append(display_path(str(Path(h.record.path).resolve())))
    paths = {}
    for pid, files in seen.items():
        before = stored.get(pid, {})
        primary = str(before.get("path") or files[0])
        others = dict.fromkeys([*(before.get("duplicate_paths") or []), *files])
        paths[pid] = ContentPaths(primary, tuple(p for p in others if p != primary))
    return paths


def _duplicate_updates(
    paths: Mapping[str, ContentPaths], stored: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, list[str]]]:
    """`duplicate_paths` of the stored points this run found new files of (none when a folder is ingested again)."""
    return {
        pid: {"duplicate_paths": list(p.duplicates)}
        for pid, p in paths.items()
        if pid in stored and list(p.duplicates) != list(stored[pid].get("duplicate_paths") or [])
    }


def _payload(h: HashedRecord, item: EmbeddedItem, vector: str, where: ContentPaths) -> dict[str, object]:
    payload: dict[str, object] = {
        "path": where.path,
        "sha256": h.sha256,
        "width": item.width,
        "height": item.height,
    }
    if h.record.label is not None:
        payload["label"] = h.record.label
    if h.record.group is not None:
        payload["group"] = h.record.group
    if where.duplicates:
        payload["duplicate_paths"] = list(where.duplicates)
    if item.status != "no_face" and item.reason:
        payload[f"note_{vector}"] = item.reason  # one key per encoder, so a later pass keeps this one
    return payload


def _label_updates(hashed: Iterable[HashedRecord]) -> dict[str, dict[str, str]]:
    """Label/group fields the source gives for points already stored (a later manifest may add labels)."""
    updates: dict[str, dict[str, str]] = {}
    for h in hashed:
        fields = {k: v for k, v in (("label", h.record.label), ("group", h.record.group)) if v is not None}
        if fields:
            updates[h.point_id] = fields
    return updates


def _store_batch(
    store: VectorStore,
    collection: str,
    encoder: str,
    todo: Sequence[HashedRecord],
    items: Sequence[EmbeddedItem],
    paths: Mapping[str, ContentPaths],
) -> list[IngestOutcome]:
    vector = vector_name(encoder)
    points: list[Point] = []
    outcomes: list[IngestOutcome] = []
    for item in items:
        h = todo[item.index]
        if item.status == "failed":
            outcomes.append(IngestOutcome(h.record.path, "failed", item.reason, h.point_id, encoder))
            continue
        vectors = {vector: item.vector} if item.vector is not None else {}
        missing = (vector,) if item.status == "no_face" else ()
        points.append(Point(h.point_id, vectors, _payload(h, item, vector, paths[h.point_id]), missing))
        status: ItemStatus = "ingested" if item.status == "ok" else "no_face"
        outcomes.append(IngestOutcome(h.record.path, status, item.reason, h.point_id, encoder))
    store.merge_points(collection, points)
    return outcomes


def ingest(
    listing: SourceListing | SourceStream,
    encoder: Encoder,
    store: VectorStore,
    config: IngestConfig,
    device: torch.device,
) -> IngestSummary:
    """Embed and store every new image of a source with one encoder; idempotent and resumable.

    Points are keyed by content hash, so images already stored (with this encoder's vector, or recorded
    as having no face) are not embedded again, and each batch is written as soon as it is embedded.
    The collection may hold other encoders' vectors too; they are kept.
    """
    return ingest_all(listing, (encoder,), store, config, device)[0]


def ingest_all(
    listing: SourceListing | SourceStream,
    encoders: Sequence[Encoder],
    store: VectorStore,
    config: IngestConfig,
    device: torch.device,
    *,
    point_ids: bool = True,
) -> tuple[IngestSummary, ...]:
    """Embed every new image of a source with each encoder, into one collection with a named vector per encoder.

    A new collection is made with all the encoders' vectors; an existing one must already hold each of them.
    The source is read in rounds of `ROUND_FILES` files: each round's files are hashed once, then each encoder
    embeds and writes what it has not stored yet, before the next round is read; so memory does not grow with
    the source (a `SourceStream` is never held whole), but for a point id and a path per distinct content, the
    problems, and (with `point_ids`) each input's point id.

    Byte-identical files share one point: a file whose content is stored already (this run or an earlier one) at
    another path is added to that point's `duplicate_paths`, in one batched payload update per round; the point's
    `path` stays the first file ingested.

    Args:
        point_ids: fill each summary's `point_ids` (path → point id of every input read); off where only the
            counts and problems are wanted, e.g. a large folder from the command line.

    Returns:
        One summary per encoder, in order; each accounts for every input (the listing's failures and skips,
        unreadable files and duplicates appear in all of them). `seconds` is the hashing time plus that encoder's
        passes.

    Raises:
        LookalikeError: no encoder, or two encoders that write the same named vector.
        StoreError: the collection exists and lacks one of the encoders' vectors.
        EncoderVersionError: the collection was made with another version of one of the encoders.
    """
    start = time.perf_counter()
    _ensure_collection(store, config.collection, encoders)
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=max(1, config.hash_threads)))
        hashing = _Hashing(stack.enter_context(_bar("hashing", listing.total, 0, config.progress)))
        passes = [
            _Pass(encoder, point_ids, stack.enter_context(_bar(f"embedding ({encoder.name})", 0, i, config.progress)))
            for i, encoder in enumerate(encoders, start=1)
        ]
        hashing.seconds = time.perf_counter() - start
        for records in _rounds(listing.records, ROUND_FILES):
            unique, paths = hashing.run(records, pool, store, config.collection)
            for one in passes:
                one.run(unique, paths, store, config, device)
    shared = [
        *(IngestOutcome(r.path, "failed", r.reason) for r in listing.failed),  # folders not listed, empty rows
        *hashing.unreadable,
        *hashing.duplicates,
        *(IngestOutcome(r.path, "skipped", r.reason) for r in listing.skipped),
    ]
    summaries = tuple(one.summary(shared, hashing.seconds) for one in passes)
    store.build_index(config.collection)  # HNSW once large enough (embedded engine); a server indexes on its own
    store.flush()
    problems = tuple(dict.fromkeys(o for s in summaries for o in s.problems))  # shared problems once
    if config.report_path is not None and problems:
        write_report(problems, config.report_path)
    return summaries


def _ensure_collection(store: VectorStore, collection: str, encoders: Sequence[Encoder]) -> None:
    """Raises LookalikeError (no encoder, or two writing one named vector), StoreError, EncoderVersionError."""
    specs = [encoder_vector_spec(e) for e in encoders]
    names = [s.name for s in specs]
    if not specs or len(set(names)) != len(names):
        raise LookalikeError(f"ingest needs distinct encoders, got: {', '.join(e.name for e in encoders) or 'none'}")
    store.ensure_collection(
        collection,
        specs,
        {s.name: e.name for s, e in zip(specs, encoders, strict=True)},
        {s.name: encoder_version(e) for s, e in zip(specs, encoders, strict=True)},
    )


def _rounds(records: Iterable[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _bar(desc: str, total: int, position: int, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not progress, position=position)


class _Hashing:
    """The run's hashing, round by round: the first path of each content (by point id), and the files whose
    content is not embedded (unreadable, or a duplicate)."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.seen: dict[str, str] = {}
        self.unreadable: list[IngestOutcome] = []
        self.duplicates: list[IngestOutcome] = []
        self.seconds = 0.0

    def run(
        self, records: Sequence[ImageRecord], pool: Executor, store: VectorStore, collection: str
    ) -> tuple[list[HashedRecord], dict[str, ContentPaths]]:
        """Hash one round; a file with the content of one seen before (this round or an earlier one) is a
        duplicate, added to the stored point's `duplicate_paths` where that point exists.

        Returns:
            The round's first file of each content not seen before, and each of the round's contents' paths.
        """
        start = time.perf_counter()
        hashed, unreadable = hash_records(records, pool, self.bar)
        unique, duplicates = _split_duplicates(hashed, self.seen)
        ids = list(dict.fromkeys(h.point_id for h in hashed))
        stored = store.payloads(collection, ids, ("path", "duplicate_paths"))
        paths = content_paths(hashed, stored)
        store.set_payloads(collection, _duplicate_updates(paths, stored))  # new points get theirs when written
        self.unreadable += unreadable
        self.duplicates += duplicates
        self.seconds += time.perf_counter() - start
        return unique, paths


class _Pass:
    """One encoder's pass, round by round: its outcomes are counted as they come, and only its problems (and,
    with `point_ids`, each input's point id) are kept."""

    def __init__(self, encoder: Encoder, point_ids: bool, bar: tqdm) -> None:
        self.encoder = encoder
        self.bar = bar
        self.counts = dict.fromkeys(_STATUSES, 0)
        self.problems: list[IngestOutcome] = []
        self.ids: dict[str, str] | None = {} if point_ids else None
        self.seconds = 0.0

    def run(
        self,
        unique: Sequence[HashedRecord],
        paths: Mapping[str, ContentPaths],
        store: VectorStore,
        config: IngestConfig,
        device: torch.device,
    ) -> None:
        """One round: skip what this encoder stored already, embed the rest, write each batch as it comes."""
        start = time.perf_counter()
        name = self.encoder.name
        ids = [h.point_id for h in unique]
        present = store.present_ids(config.collection, ids, vector_name(name), retry_missing=config.retry_missing)
        self._add(
            IngestOutcome(h.record.path, "already_present", "", h.point_id, name)
            for h in unique
            if h.point_id in present
        )
        store.set_payloads(config.collection, _label_updates(h for h in unique if h.point_id in present))
        todo = [h for h in unique if h.point_id not in present]
        if todo:  # decode workers are started for each round that has work
            self._embed(todo, paths, store, config, device)
        self.seconds += time.perf_counter() - start

    def _embed(
        self,
        todo: Sequence[HashedRecord],
        paths: Mapping[str, ContentPaths],
        store: VectorStore,
        config: IngestConfig,
        device: torch.device,
    ) -> None:
        self.bar.total += len(todo)
        self.bar.refresh()
        embed_cfg = EmbedConfig(config.batch_size, config.workers, config.max_pixels)
        for items in embed_paths([h.record.path for h in todo], self.encoder, device, embed_cfg):
            self._add(_store_batch(store, config.collection, self.encoder.name, todo, items, paths))
            self.bar.update(len(items))

    def _add(self, outcomes: Iterable[IngestOutcome]) -> None:
        for o in outcomes:
            self.counts[o.status] += 1
            if o.status not in _DONE:
                self.problems.append(o)
            if self.ids is not None and o.point_id:
                self.ids[o.path] = o.point_id

    def summary(self, shared: Sequence[IngestOutcome], hashing_seconds: float) -> IngestSummary:
        """This encoder's summary: the outcomes every encoder shares, then its own; problems are every outcome
        that is not ingested or already present."""
        counts = dict(self.counts)
        for o in shared:
            counts[o.status] += 1
        ids = {} if self.ids is None else {**{o.path: o.point_id for o in shared if o.point_id}, **self.ids}
        return IngestSummary(
            seen=sum(counts.values()),
            seconds=hashing_seconds + self.seconds,
            problems=(*shared, *self.problems),
            point_ids=ids,
            encoder=self.encoder.name,
            **counts,
        )


def combine_summaries(summaries: Sequence[IngestSummary]) -> IngestSummary:
    """Counts summed over several passes (e.g. one per encoder), point ids and problems merged."""
    keys = ("seen", "ingested", "already_present", "duplicate_content", "no_face", "failed", "skipped", "seconds")
    totals = {k: sum(getattr(s, k) for s in summaries) for k in keys}
    ids = {path: pid for s in summaries for path, pid in s.point_ids.items()}
    problems = tuple(dict.fromkeys(o for s in summaries for o in s.problems))
    encoder = ",".join(s.encoder for s in summaries)
    return IngestSummary(**totals, problems=problems, point_ids=ids, encoder=encoder)


def write_report(problems: Sequence[IngestOutcome], path: Path) -> None:
    """CSV of every input that was not ingested, with its status, reason and (for per-encoder problems) encoder.

    Fields are quoted where needed, so names with commas, quotes, tabs or newlines read back unchanged; a name
    that is not UTF-8 is written as `display_path` escapes it (each odd byte as `\\xNN`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        {
            "path": [display_path(o.path) for o in problems],
            "status": [o.status for o in problems],
            "reason": [display_path(o.reason) for o in problems],
            "point_id": [o.point_id for o in problems],
            "encoder": [o.encoder for o in problems],
        }
    )
    frame.write_csv(path)
