"""`dedup --new`'s first step: the entries the listing skipped or failed, hashing every file, and the exact tier
(the same bytes as an indexed point, the indexed file itself, or the same bytes as an earlier new file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from pipeline.core.files import display_path
from pipeline.core.records import HashedRecord, ImageRecord
from pipeline.dedup.new_records import NewFile, shown_path
from pipeline.index.hashing import hash_file
from pipeline.index.sources import SourceListing
from pipeline.store import VectorStore, point_id_for

HASH_THREADS = 8  # hashing is I/O bound and hashlib releases the GIL
_SAME_BYTES_NEW = "same bytes as another new file"


def listing_files(listing: SourceListing) -> list[NewFile]:
    """The entries the source itself skipped (not image names) or could not list (folders, empty manifest rows)."""
    skipped = [NewFile(shown_path(r.path), "skipped", reason=r.reason) for r in listing.skipped]
    return skipped + [NewFile(shown_path(r.path), "failed", reason=r.reason) for r in listing.failed]


def hash_files(records: Sequence[ImageRecord], progress: bool = False) -> tuple[list[HashedRecord], list[NewFile]]:
    """Hash every file (threads), as ingest does: the records in order, and a failed `NewFile` for each that cannot
    be read as a regular non-empty file (FIFO, folder, broken or looping symlink, read error)."""
    hashed: list[HashedRecord] = []
    failed: list[NewFile] = []
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        results = zip(records, pool.map(_hash_one, records), strict=True)
        for record, result in tqdm(results, total=len(records), desc="hashing new", unit="img", disable=not progress):
            if isinstance(result, str):
                failed.append(NewFile(shown_path(record.path), "failed", reason=result))
            else:
                hashed.append(result)
    return hashed, failed


def _hash_one(record: ImageRecord) -> HashedRecord | str:
    """The hashed record, or why the file cannot be read (ingest's own stage and reasons: `index.hashing`)."""
    found = hash_file(record.path)
    return HashedRecord(record, found.sha256, point_id_for(found.sha256)) if found.sha256 else found.reason


def exact_tier(
    store: VectorStore, collection: str, hashed: Sequence[HashedRecord]
) -> tuple[list[NewFile], list[HashedRecord]]:
    """Files whose bytes are indexed (exact, or indexed when the file itself is) and byte copies among the new files
    (within_new, of the first listed); the rest, one file per content, go on to the near tier.

    Returns:
        The files decided here, and the new contents to embed (in listing order).
    """
    stored = store.payloads(collection, list(dict.fromkeys(h.point_id for h in hashed)), ("path", "duplicate_paths"))
    files: list[NewFile] = []
    first: dict[str, str] = {}  # point id of a content not indexed → the first new file with it
    todo: list[HashedRecord] = []
    for h in hashed:
        path = shown_path(h.record.path)
        if h.point_id in stored:
            files.append(_indexed_match(h, path, stored[h.point_id]))
        elif h.point_id in first:
            files.append(NewFile(path, "within_new", first[h.point_id], "", 1.0, _SAME_BYTES_NEW))
        else:
            first[h.point_id] = path
            todo.append(h)
    return files, todo


def _indexed_match(h: HashedRecord, path: str, payload: Mapping[str, object]) -> NewFile:
    """An exact copy of an indexed point, or the point's own file (ingest records resolved paths)."""
    primary = str(payload.get("path") or "")
    others = payload.get("duplicate_paths") or []
    recorded = {primary, *(others if isinstance(others, list) else [])}
    resolved = display_path(str(Path(h.record.path).resolve()))
    if resolved in recorded:
        reason = "already in the collection; `lookalike dedup -c NAME` groups it with its duplicates"
        return NewFile(path, "indexed", primary if primary != resolved else "", h.point_id, None, reason)
    return NewFile(path, "exact", primary, h.point_id, 1.0, "same bytes as an indexed file")
