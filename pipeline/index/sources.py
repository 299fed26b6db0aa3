"""Ingest sources: a folder (recursive, label = sub-folder) or a CSV/Parquet manifest read with polars.

Every entry a source holds is accounted for: listed as an image record, skipped with a reason, or failed with a
reason (a folder that cannot be listed, a manifest row without a path). Names starting with "." (hidden files and
folders) are not entries. Symlinks are followed wherever they point; each folder is listed once (see `_plan_folders`).

`stream_source` reads a source as it is ingested: a folder's images are yielded one at a time in path order, so
memory does not grow with the number of files (only with the number of folders, and the largest folder's names);
`list_source` is the same listing held in memory.
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.core.errors import SourceError
from pipeline.core.files import display_path, read_table
from pipeline.core.records import ImageRecord, Rejection

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jfif"}
)
MANIFEST_SUFFIXES = frozenset({".csv", ".parquet", ".pq"})
NOT_AN_IMAGE_NAME = "not an image file name"


@dataclass(frozen=True)
class SourceListing:
    """What a source yields; each entry it holds is in exactly one of the three.

    Attributes:
        records: images to ingest, by name (a file is only opened later, where it may still fail).
        skipped: entries passed over on purpose, with why: names without an image suffix, symlinked folders
            already listed (a loop, or another way to the same folder).
        failed: entries that could not be listed: folders that cannot be read, manifest rows without a path.
    """

    records: tuple[ImageRecord, ...]
    skipped: tuple[Rejection, ...] = ()
    failed: tuple[Rejection, ...] = ()

    @property
    def total(self) -> int:
        """How many records there are (as `SourceStream.total`)."""
        return len(self.records)


@dataclass(frozen=True)
class SourceStream:
    """A source read as it is used: the same entries as its `SourceListing`, the records one at a time.

    Attributes:
        records: the images, sorted by path; a single-use iterator.
        total: how many records it yields, counted ahead without keeping them (for progress bars; a folder that
            changes while it is read may yield a few more or fewer).
        skipped: as `SourceListing.skipped`, sorted by path; known before the first record.
        failed: as `SourceListing.failed`, sorted by path; known before the first record, but for a folder that
            could be listed at first and not when its files are read (it changed in between).
    """

    records: Iterator[ImageRecord]
    total: int
    skipped: list[Rejection] = field(default_factory=list)
    failed: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class ManifestColumns:
    """Column names in a manifest; label and group are optional."""

    path: str = "path"
    label: str = "label"
    group: str = "group"


def list_source(
    source: str | os.PathLike[str], columns: ManifestColumns | None = None, limit: int | None = None
) -> SourceListing:
    """List a folder or a manifest, sorted by path so `limit` and re-runs are stable.

    Raises:
        SourceError: the source does not exist, is an unsupported file, lacks the path column, or is a folder
            that cannot be listed (its sub-folders that cannot be listed are `failed` entries instead).
    """
    stream = stream_source(source, columns, limit)
    records = tuple(stream.records)
    return SourceListing(records, tuple(stream.skipped), tuple(stream.failed))


def stream_source(
    source: str | os.PathLike[str], columns: ManifestColumns | None = None, limit: int | None = None
) -> SourceStream:
    """A folder or a manifest as `list_source` lists it, its records yielded one at a time (`limit` at most).

    A folder's tree of folders is read first (to count the images and to list each folder once, under its real
    path where it has one), then its files folder by folder as the records are consumed. A manifest is read whole
    (one column of text per field) and turned into records as they are consumed.

    Raises:
        SourceError: as `list_source`, before any record is yielded.
    """
    root = Path(source)
    if root.is_dir():
        stream = _stream_folder(root)
    elif root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        stream = _stream_manifest(root, columns or ManifestColumns())
    elif root.exists():
        raise SourceError(f"{root}: not a folder or a .csv/.parquet manifest")
    else:
        raise SourceError(f"{root}: no such file or folder")
    if limit is None:
        return stream
    return SourceStream(
        itertools.islice(stream.records, limit), min(stream.total, limit), stream.skipped, stream.failed
    )


@dataclass(frozen=True)
class _FolderPlan:
    """What the first read of a folder tree decided: the folders to list, the rest of its entries' fates."""

    listed: frozenset[Path]
    images: int
    skipped: list[Rejection]
    failed: list[Rejection]


def _stream_folder(root: Path) -> SourceStream:
    """Raises SourceError when `root` itself cannot be listed (nothing to ingest, and nothing half-done)."""
    plan = _plan_folders(root)
    if plan.failed and plan.failed[0].path == str(root):  # the root is listed first
        raise SourceError(f"{root}: {plan.failed[0].reason}")
    return SourceStream(_folder_records(root, plan), plan.images, plan.skipped, plan.failed)


def _folder_records(root: Path, plan: _FolderPlan) -> Iterator[ImageRecord]:
    """The image files of the planned folders, depth first with each folder's entries by name: the order of
    sorting every path (a path sorts by its parts). Only one folder's names per level are held at a time."""
    levels: list[Iterator[os.DirEntry[str]]] = []
    _descend(root, levels, plan.failed)
    while levels:
        entry = next(levels[-1], None)
        if entry is None:
            levels.pop()
        elif not _is_folder(entry):
            path = Path(entry.path)
            if path.suffix.lower() in IMAGE_SUFFIXES:  # other names are in plan.skipped already
                parent = path.parent.relative_to(root)
                yield ImageRecord(str(path), label=None if parent == Path(".") else display_path(parent.as_posix()))
        elif Path(entry.path) in plan.listed:
            _descend(Path(entry.path), levels, plan.failed)


def _descend(folder: Path, levels: list[Iterator[os.DirEntry[str]]], failed: list[Rejection]) -> None:
    """Push a planned folder's entries; one that cannot be listed now (it changed since the plan) fails."""
    try:
        levels.append(iter(_entries(folder)))
    except OSError as e:
        failure = Rejection(str(folder), f"cannot list folder: {e.strerror or e}")
        bisect.insort(failed, failure, key=lambda r: Path(r.path))


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The non-hidden entries of a folder, by name. Raises OSError when it cannot be listed."""
    with os.scandir(folder) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _plan_folders(root: Path) -> _FolderPlan:
    """Every folder under `root` to list, listing each folder once; files are counted and their names checked,
    not kept.

    Unlike `os.walk`, a folder that cannot be listed is a failure with its reason, not silence. Symlinked folders
    are followed, but only after every real folder reachable without them: a folder reached again (by a symlink
    loop such as `up -> ..`, or a second link to it) is skipped with the path it was listed under, so the walk
    ends and a folder is listed under its real path where it has one.

    Returns:
        The folders to list; the number of image files in them (anything not a folder with an image name:
        symlinks to files, broken symlinks, FIFOs included); the skipped entries (folder symlinks already listed,
        names without an image suffix) and the folders that could not be listed, each sorted by path.
    """
    images = 0
    skipped: list[Rejection] = []
    failed: list[Rejection] = []
    listed: dict[tuple[int, int], Path] = {}
    readable: list[Path] = []
    real: list[Path] = [root]
    linked: deque[Path] = deque()
    while real or linked:
        folder = real.pop() if real else linked.popleft()
        try:
            info = folder.stat()
            identity = (info.st_dev, info.st_ino)
            if identity in listed:
                reason = f"folder already listed as {listed[identity]} (a symlink loop, or a second way in)"
                skipped.append(Rejection(str(folder), reason))
                continue
            listed[identity] = folder
            entries = _entries(folder)
        except OSError as e:
            failed.append(Rejection(str(folder), f"cannot list folder: {e.strerror or e}"))
            continue
        readable.append(folder)
        for entry in entries:
            if _is_folder(entry):
                (linked if entry.is_symlink() else real).append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                images += 1
            else:
                skipped.append(Rejection(str(Path(entry.path)), NOT_AN_IMAGE_NAME))
    skipped.sort(key=lambda r: Path(r.path))
    failed.sort(key=lambda r: Path(r.path))
    return _FolderPlan(frozenset(readable), images, skipped, failed)


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Whether an entry is a folder, symlinks followed; a symlink loop or unreadable target is not (it is then
    listed as a file, and opening it later gives the reason)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _stream_manifest(manifest: Path, columns: ManifestColumns) -> SourceStream:
    """Records sorted by path; a row whose path is null, empty or blank fails, named by its data row number (the
    first row after the header is 1)."""
    frame = _read_frame(manifest, columns)
    row_number = "_row"
    while row_number in frame.columns:
        row_number += "_"
    frame = frame.with_row_index(row_number, offset=1).sort(columns.path)
    pairs = frame.select(row_number, columns.path).iter_rows()
    empty = sorted(n for n, value in pairs if _blank(value))
    reason = "manifest row {}: empty {!r} value, no image to read"
    failed = [Rejection(str(manifest), reason.format(n, columns.path)) for n in empty]
    records = _manifest_records(manifest, frame, columns)
    return SourceStream(records, len(frame) - len(empty), failed=failed)


def _manifest_records(manifest: Path, frame: pl.DataFrame, columns: ManifestColumns) -> Iterator[ImageRecord]:
    """The rows with a path, as records; a relative path is read from the manifest's folder."""
    label = columns.label if columns.label in frame.columns else None
    group = columns.group if columns.group in frame.columns else None
    for row in frame.iter_rows(named=True):
        if _blank(row[columns.path]):
            continue
        path = Path(str(row[columns.path]))
        yield ImageRecord(
            str(path if path.is_absolute() else manifest.parent / path),
            label=_text(row[label]) if label else None,
            group=_text(row[group]) if group else None,
        )


def _read_frame(manifest: Path, columns: ManifestColumns) -> pl.DataFrame:
    frame = read_table(manifest, "manifest", SourceError)
    if columns.path not in frame.columns:
        have = ", ".join(frame.columns)
        raise SourceError(
            f"{manifest}: no {columns.path!r} column (have: {have}); name the column that holds the image paths",
            setting="path_column",
        )
    return frame


def _blank(value: object) -> bool:
    text = _text(value)
    return text is None or not text.strip()


def _text(value: object) -> str | None:
    return None if value is None else str(value)
