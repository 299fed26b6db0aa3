"""Ingest sources: a folder (recursive, label = sub-folder) or a CSV/Parquet manifest read with polars."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.errors import SourceError
from pipeline.records import ImageRecord

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jfif"}
)
MANIFEST_SUFFIXES = frozenset({".csv", ".parquet", ".pq"})


@dataclass(frozen=True)
class SourceListing:
    """What a source yields: images to ingest, and files skipped because they are not images by name."""

    records: tuple[ImageRecord, ...]
    skipped: tuple[str, ...] = ()


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
        SourceError: the source does not exist, is an unsupported file, or lacks the path column.
    """
    root = Path(source)
    if root.is_dir():
        listing = _list_folder(root)
    elif root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        listing = SourceListing(tuple(_read_manifest(root, columns or ManifestColumns())))
    elif root.exists():
        raise SourceError(f"{root}: not a folder or a .csv/.parquet manifest")
    else:
        raise SourceError(f"{root}: no such file or folder")
    if limit is not None:
        listing = SourceListing(listing.records[:limit], listing.skipped)
    return listing


def _list_folder(root: Path) -> SourceListing:
    records: list[ImageRecord] = []
    skipped: list[str] = []
    for path in sorted(_walk(root)):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            parent = path.parent.relative_to(root)
            label = None if parent == Path(".") else parent.as_posix()
            records.append(ImageRecord(str(path), label=label))
        else:
            skipped.append(str(path))
    return SourceListing(tuple(records), tuple(skipped))


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name


def _read_manifest(manifest: Path, columns: ManifestColumns) -> Iterator[ImageRecord]:
    try:
        frame = pl.read_parquet(manifest) if manifest.suffix.lower() != ".csv" else pl.read_csv(manifest)
    except Exception as e:
        raise SourceError(f"{manifest}: cannot read manifest: {e}") from e
    if columns.path not in frame.columns:
        have = ", ".join(frame.columns)
        raise SourceError(f"{manifest}: no {columns.path!r} column (have: {have}); pass --path-column")
    label = columns.label if columns.label in frame.columns else None
    group = columns.group if columns.group in frame.columns else None
    base = manifest.parent
    for row in frame.sort(columns.path).iter_rows(named=True):
        if row[columns.path] is None:
            continue
        path = Path(str(row[columns.path]))
        yield ImageRecord(
            str(path if path.is_absolute() else base / path),
            label=_text(row[label]) if label else None,
            group=_text(row[group]) if group else None,
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
