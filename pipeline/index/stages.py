"""The stages of an ingest, as functions every way of running one calls: turn a file's hash (`hashing.hash_file`)
into a record, group duplicates, find each content's paths, build a batch's points and write them, account the
outcomes, write the report.

The single-process runner (`pipeline.index.ingest`) and the Ray pipeline (`pipeline.index.distributed`) differ only
in where hashing and decoding + encoding run; what the results mean, what is written and how every input is
accounted for is decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.conventions import vector_name
from pipeline.core.files import display_path
from pipeline.core.records import HashedRecord, ImageRecord, IngestOutcome, IngestSummary, ItemStatus
from pipeline.index.hashing import FileHash
from pipeline.index.prepared import EmbeddedItem
from pipeline.store import Point, VectorStore, point_id_for

STATUSES = ("ingested", "already_present", "duplicate_content", "no_face", "failed", "skipped")
_DONE = ("ingested", "already_present")  # every other outcome is a problem, with a reason in the report


def hashed_or_failed(record: ImageRecord, result: FileHash) -> HashedRecord | IngestOutcome:
    """A hashed record (its point id is the content's), or the file's failure."""
    if result.reason:
        return IngestOutcome(record.path, "failed", result.reason)
    return HashedRecord(record, result.sha256, point_id_for(result.sha256))


def split_duplicates(
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


def duplicate_updates(
    paths: Mapping[str, ContentPaths], stored: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, list[str]]]:
    """`duplicate_paths` of the stored points this run found new files of (none when a folder is ingested again)."""
    return {
        pid: {"duplicate_paths": list(p.duplicates)}
        for pid, p in paths.items()
        if pid in stored and list(p.duplicates) != list(stored[pid].get("duplicate_paths") or [])
    }


def label_updates(hashed: Iterable[HashedRecord]) -> dict[str, dict[str, str]]:
    """Label/group fields the source gives for points already stored (a later manifest may add labels)."""
    updates: dict[str, dict[str, str]] = {}
    for h in hashed:
        fields = {k: v for k, v in (("label", h.record.label), ("group", h.record.group)) if v is not None}
        if fields:
            updates[h.point_id] = fields
    return updates


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


def build_points(
    encoder: str, todo: Sequence[HashedRecord], items: Sequence[EmbeddedItem], paths: Mapping[str, ContentPaths]
) -> tuple[list[Point], list[IngestOutcome]]:
    """One embedded batch as points to write, and each item's outcome (in the batch's order).

    Args:
        encoder: the encoder's name (its named vector is derived from it).
        todo: the files the batch's `EmbeddedItem.index` points into.
    """
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
    return points, outcomes


def store_batch(
    store: VectorStore,
    collection: str,
    encoder: str,
    todo: Sequence[HashedRecord],
    items: Sequence[EmbeddedItem],
    paths: Mapping[str, ContentPaths],
) -> list[IngestOutcome]:
    """Write one embedded batch (stored when this returns) and give each item's outcome."""
    points, outcomes = build_points(encoder, todo, items, paths)
    store.merge_points(collection, points)
    return outcomes


class Tally:
    """One encoder's outcomes, counted as they come: only its problems (and, with `point_ids`, each input's point
    id) are kept."""

    def __init__(self, encoder: str, point_ids: bool) -> None:
        self.encoder = encoder
        self.counts = dict.fromkeys(STATUSES, 0)
        self.problems: list[IngestOutcome] = []
        self.ids: dict[str, str] | None = {} if point_ids else None

    def add(self, outcomes: Iterable[IngestOutcome]) -> None:
        for o in outcomes:
            self.counts[o.status] += 1
            if o.status not in _DONE:
                self.problems.append(o)
            if self.ids is not None and o.point_id:
                self.ids[o.path] = o.point_id

    def summary(self, shared: Sequence[IngestOutcome], seconds: float) -> IngestSummary:
        """This encoder's summary: the outcomes every encoder shares, then its own; problems are every outcome
        that is not ingested or already present."""
        counts = dict(self.counts)
        for o in shared:
            counts[o.status] += 1
        ids = {} if self.ids is None else {**{o.path: o.point_id for o in shared if o.point_id}, **self.ids}
        return IngestSummary(
            seen=sum(counts.values()),
            seconds=seconds,
            problems=(*shared, *self.problems),
            point_ids=ids,
            encoder=self.encoder,
            **counts,
        )


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
