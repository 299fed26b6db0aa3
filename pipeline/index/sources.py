"""Ingest sources: a folder (recursive, label = sub-folder) or a CSV/Parquet manifest read with polars.

Every entry a source holds is accounted for: listed as an image record, skipped with a reason, or failed with a
reason (a folder that cannot be listed, a manifest row without a path). Names starting with "." (hidden files and
folders) are not entries. Symlinks are followed wherever they point; each folder is listed once (see `_walk`).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
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
    root = Path(source)
    if root.is_dir():
        listing = _list_folder(root)
    elif root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        listing = _read_manifest(root, columns or ManifestColumns())
    elif root.exists():
        raise SourceError(f"{root}: not a folder or a .csv/.parquet manifest")
    else:
        raise SourceError(f"{root}: no such file or folder")
    if limit is not None:
        listing = SourceListing(listing.records[:limit], listing.skipped, listing.failed)
    return listing


def _list_folder(root: Path) -> SourceListing:
    """Raises SourceError when `root` itself cannot be listed (nothing to ingest, and nothing half-done)."""
    files, skipped, failed = _walk(root)
    if failed and failed[0].path == str(root):  # the root is listed first
        raise SourceError(f"{root}: {failed[0].reason}")
    records: list[ImageRecord] = []
    for path in sorted(files):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            parent = path.parent.relative_to(root)
            label = None if parent == Path(".") else display_path(parent.as_posix())
            records.append(ImageRecord(str(path), label=label))
        else:
            skipped.append(Rejection(str(path), NOT_AN_IMAGE_NAME))
    by_path = sorted(skipped, key=lambda r: Path(r.path))
    return SourceListing(tuple(records), tuple(by_path), tuple(sorted(failed, key=lambda r: Path(r.path))))


def _walk(root: Path) -> tuple[list[Path], list[Rejection], list[Rejection]]:
    """Every non-hidden entry under `root` that is not a folder, listing each folder once.

    Unlike `os.walk`, a folder that cannot be listed is a failure with its reason, not silence. Symlinked folders
    are followed, but only after every real folder reachable without them: a folder reached again (by a symlink
    loop such as `up -> ..`, or a second link to it) is skipped with the path it was listed under, so the walk
    ends and a folder is listed under its real path where it has one.

    Returns:
        The files (anything not a folder: symlinks to files, broken symlinks, FIFOs included), the skipped
        folder symlinks, and the folders that could not be listed.
    """
    files: list[Path] = []
    skipped: list[Rejection] = []
    failed: list[Rejection] = []
    listed: dict[tuple[int, int], Path] = {}
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
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:
            failed.append(Rejection(str(folder), f"cannot list folder: {e.strerror or e}"))
            continue
        for entry in entries:
            if not _is_folder(entry):
                files.append(Path(entry.path))
            else:
                (linked if entry.is_symlink() else real).append(Path(entry.path))
    return files, skipped, failed


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Whether an entry is a folder, symlinks followed; a symlink loop or unreadable target is not (it is then
    listed as a file, and opening it later gives the reason)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _read_manifest(manifest: Path, columns: ManifestColumns) -> SourceListing:
    """Records sorted by path; a row whose path is null, empty or blank fails, named by its data row number (the
    first row after the header is 1)."""
    frame = _read_frame(manifest, columns)
    label = columns.label if columns.label in frame.columns else None
    group = columns.group if columns.group in frame.columns else None
    row_number = "_row"
    while row_number in frame.columns:
        row_number += "_"
    records: list[ImageRecord] = []
    empty: list[int] = []
    for row in frame.with_row_index(row_number, offset=1).sort(columns.path).iter_rows(named=True):
        value = _text(row[columns.path])
        if value is None or not value.strip():
            empty.append(row[row_number])
            continue
        path = Path(value)
        records.append(
            ImageRecord(
                str(path if path.is_absolute() else manifest.parent / path),
                label=_text(row[label]) if label else None,
                group=_text(row[group]) if group else None,
            )
        )
    reason = "manifest row {}: empty {!r} value, no image to read"
    failed = tuple(Rejection(str(manifest), reason.format(n, columns.path)) for n in sorted(empty))
    return SourceListing(tuple(records), failed=failed)


def _read_frame(manifest: Path, columns: ManifestColumns) -> pl.DataFrame:
    frame = read_table(manifest, "manifest", SourceError)
    if columns.path not in frame.columns:
        have = ", ".join(frame.columns)
        raise SourceError(f"{manifest}: no {columns.path!r} column (have: {have}); pass --path-column")
    return frame


def _text(value: object) -> str | None:
    return None if value is None else str(value)
