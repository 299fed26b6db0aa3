"""Ingest: source listing → content hashes → skip what is stored → embed → batched writes → summary.

A collection may hold several encoders' vectors (one named vector each): `ingest_all` hashes once, then runs
one pass per encoder, and each pass adds its vectors to the points without touching the others'.

Byte-identical files share one point (its id is the content hash). The point's payload `path` is the first file
ingested with that content; every other file with the same bytes, from this run or any earlier one, is kept in its
payload list `duplicate_paths`, which is what `dedup`'s exact tier reads.

Every entry of the listing ends in exactly one outcome: the source's own failures (folders it could not list,
manifest rows without a path) and skips come first, then files that cannot be read as regular files (FIFOs, broken
or looping symlinks) fail at hashing without blocking, and the rest are embedded or fail at decoding with a reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from pipeline.index.sources import SourceListing
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for


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
    records: Sequence[ImageRecord], threads: int = 8, progress: bool = True
) -> tuple[list[HashedRecord], list[IngestOutcome]]:
    """Hash every file (threads: hashing is I/O bound and hashlib releases the GIL).

    Returns:
        The hashed records in input order, and an outcome for each file that could not be read.
    """
    hashed: list[HashedRecord] = []
    failed: list[IngestOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = pool.map(_hash_one, records)
        for result in tqdm(results, total=len(records), desc="hashing", unit="img", disable=not progress):
            (hashed if isinstance(result, HashedRecord) else failed).append(result)
    return hashed, failed


def _split_duplicates(hashed: Sequence[HashedRecord]) -> tuple[list[HashedRecord], list[IngestOutcome]]:
    seen: dict[str, str] = {}
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
    listing: SourceListing, encoder: Encoder, store: VectorStore, config: IngestConfig, device: torch.device
) -> IngestSummary:
    """Embed and store every new image of a source with one encoder; idempotent and resumable.

    Points are keyed by content hash, so images already stored (with this encoder's vector, or recorded
    as having no face) are not embedded again, and each batch is written as soon as it is embedded.
    The collection may hold other encoders' vectors too; they are kept.
    """
    return ingest_all(listing, (encoder,), store, config, device)[0]


def ingest_all(
    listing: SourceListing, encoders: Sequence[Encoder], store: VectorStore, config: IngestConfig, device: torch.device
) -> tuple[IngestSummary, ...]:
    """Embed every new image of a source with each encoder, into one collection with a named vector per encoder.

    A new collection is made with all the encoders' vectors; an existing one must already hold each of them.
    Files are hashed once; then one pass per encoder embeds what that encoder has not stored yet.

    Byte-identical files share one point: a file whose content is stored already (this run or an earlier one) at
    another path is added to that point's `duplicate_paths`, in one batched payload update; the point's `path`
    stays the first file ingested.

    Returns:
        One summary per encoder, in order; each accounts for every input (the listing's failures and skips,
        unreadable files and duplicates appear in all of them). `seconds` is the hashing time plus that encoder's pass.

    Raises:
        LookalikeError: no encoder, or two encoders that write the same named vector.
        StoreError: the collection exists and lacks one of the encoders' vectors.
        EncoderVersionError: the collection was made with another version of one of the encoders.
    """
    start = time.perf_counter()
    specs = [encoder_vector_spec(e) for e in encoders]
    names = [s.name for s in specs]
    if not specs or len(set(names)) != len(names):
        raise LookalikeError(f"ingest needs distinct encoders, got: {', '.join(e.name for e in encoders) or 'none'}")
    store.ensure_collection(
        config.collection,
        specs,
        {s.name: e.name for s, e in zip(specs, encoders, strict=True)},
        {s.name: encoder_version(e) for s, e in zip(specs, encoders, strict=True)},
    )
    hashed, unreadable = hash_records(listing.records, config.hash_threads, config.progress)
    unique, duplicates = _split_duplicates(hashed)
    stored = store.payloads(config.collection, [h.point_id for h in unique], ("path", "duplicate_paths"))
    paths = content_paths(hashed, stored)
    store.set_payloads(config.collection, _duplicate_updates(paths, stored))  # new points get theirs when written
    shared = [
        *(IngestOutcome(r.path, "failed", r.reason) for r in listing.failed),  # folders not listed, empty rows
        *unreadable,
        *duplicates,
        *(IngestOutcome(r.path, "skipped", r.reason) for r in listing.skipped),
    ]
    hashing = time.perf_counter() - start
    summaries = []
    for encoder in encoders:
        pass_start = time.perf_counter()
        outcomes = _ingest_pass(unique, encoder, store, config, device, paths)
        seconds = hashing + time.perf_counter() - pass_start
        summaries.append(summarise([*shared, *outcomes], seconds, encoder.name))
    store.build_index(config.collection)  # HNSW once large enough (embedded engine); a server indexes on its own
    store.flush()
    problems = tuple(dict.fromkeys(o for s in summaries for o in s.problems))  # shared problems once
    if config.report_path is not None and problems:
        write_report(problems, config.report_path)
    return tuple(summaries)


def _ingest_pass(
    unique: Sequence[HashedRecord],
    encoder: Encoder,
    store: VectorStore,
    config: IngestConfig,
    device: torch.device,
    paths: Mapping[str, ContentPaths],
) -> list[IngestOutcome]:
    """One encoder's pass: skip what it already stored, embed the rest, write each batch as it comes."""
    vector = vector_name(encoder.name)
    ids = [h.point_id for h in unique]
    present = store.present_ids(config.collection, ids, vector, retry_missing=config.retry_missing)
    outcomes = [
        IngestOutcome(h.record.path, "already_present", "", h.point_id, encoder.name)
        for h in unique
        if h.point_id in present
    ]
    store.set_payloads(config.collection, _label_updates(h for h in unique if h.point_id in present))
    todo = [h for h in unique if h.point_id not in present]
    embed_cfg = EmbedConfig(config.batch_size, config.workers, config.max_pixels)
    bar = tqdm(total=len(todo), desc=f"embedding ({encoder.name})", unit="img", disable=not config.progress)
    with bar:
        for items in embed_paths([h.record.path for h in todo], encoder, device, embed_cfg):
            outcomes += _store_batch(store, config.collection, encoder.name, todo, items, paths)
            bar.update(len(items))
    return outcomes


def summarise(outcomes: Sequence[IngestOutcome], seconds: float, encoder: str = "") -> IngestSummary:
    """Count outcomes per status; problems are every outcome that is not ingested or already present."""
    counts = {s: 0 for s in ("ingested", "already_present", "duplicate_content", "no_face", "failed", "skipped")}
    for o in outcomes:
        counts[o.status] += 1
    problems = tuple(o for o in outcomes if o.status not in ("ingested", "already_present"))
    ids = {o.path: o.point_id for o in outcomes if o.point_id}
    return IngestSummary(
        seen=len(outcomes), seconds=seconds, problems=problems, point_ids=ids, encoder=encoder, **counts
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
