"""Reading a copy benchmark (DISC21 style) for the copies protocol: where its parts are (`CopyLayout`), its
references and queries, and its ground truth matched to their images (`load_copy_set`), rows naming no file counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.errors import DatasetError
from pipeline.core.files import read_table
from pipeline.index.sources import list_source

DEFAULT_TRANSFORM_COLUMN = "transform"


@dataclass(frozen=True)
class CopyLayout:
    """Where a copy benchmark keeps its parts; paths are relative to the benchmark folder, or absolute.

    Attributes:
        references: folder of reference images (recursive).
        queries: folder of query images (recursive); a query the ground truth does not name is a negative.
        ground_truth: CSV (or Parquet) with one row per query: the query, its reference (empty for a negative)
            and optionally its transform. A name may be a path relative to the benchmark folder or to the images'
            folder, an absolute path, or a file stem (DISC21's `Q00001` for `Q00001.jpg`).
        query_column, reference_column: the ground truth's column names.
        transform_column: None: "transform" when the table has it, else no per-transform breakdown.
    """

    references: Path = Path("references")
    queries: Path = Path("queries")
    ground_truth: Path = Path("ground_truth.csv")
    query_column: str = "query"
    reference_column: str = "reference"
    transform_column: str | None = None


@dataclass(frozen=True)
class CopyQuery:
    """One query image; `reference` is the true original's path, "" for a negative (no copy in the set)."""

    path: str
    reference: str
    transform: str


@dataclass(frozen=True)
class CopySet:
    """A benchmark: the references and the queries with ground truth, and the ground-truth rows that named no file.

    Attributes:
        missing_queries: ground-truth query names with no image in the queries folder (rows left out).
        missing_references: "query → reference" of rows whose reference is not in the references folder (the
            query is left out: it is neither a copy nor a negative).
        transforms: whether the ground truth has a transform column (recall@1 is then broken down by transform).
    """

    root: Path
    references: tuple[str, ...]
    queries: tuple[CopyQuery, ...]
    missing_queries: tuple[str, ...] = ()
    missing_references: tuple[str, ...] = ()
    transforms: bool = True


@dataclass(frozen=True)
class _Folder:
    """The images under one folder, findable by the names a ground truth uses."""

    folder: Path
    paths: tuple[str, ...]
    by_real_path: dict[str, str]
    by_stem: dict[str, str]  # stems naming one image only

    @classmethod
    def scan(cls, folder: Path, what: str, setting: str) -> _Folder:
        paths = tuple(r.path for r in list_source(folder).records)
        if not paths:
            raise DatasetError(f"{folder}: no images in the {what} folder", setting=setting)
        stems: dict[str, list[str]] = {}
        for p in paths:
            stems.setdefault(Path(p).stem, []).append(p)
        by_stem = {stem: found[0] for stem, found in stems.items() if len(found) == 1}
        return cls(folder, paths, {str(Path(p).resolve()): p for p in paths}, by_stem)

    def find(self, name: str, root: Path) -> str | None:
        """The image a ground-truth name means, or None when it names none of this folder's images."""
        for candidate in (root / name, self.folder / name):  # an absolute name is both
            if (path := self.by_real_path.get(str(candidate.resolve()))) is not None:
                return path
        return self.by_stem.get(name)


def _locate(root: Path, layout: CopyLayout) -> tuple[Path, Path, Path]:
    """The references folder, queries folder and ground-truth file; each missing one named with its setting."""
    if not root.is_dir():
        state = "not a folder" if root.exists() else "no such folder"
        raise DatasetError(f"{root}: {state}; give a copy benchmark folder (make one with `lookalike bench copies`)")
    parts = (
        (root / layout.references, "references folder", "references_dir", True),
        (root / layout.queries, "queries folder", "queries_dir", True),
        (root / layout.ground_truth, "ground-truth file", "ground_truth", False),
    )
    for path, what, setting, folder in parts:
        if not (path.is_dir() if folder else path.is_file()):
            state = ("not a folder" if folder else "not a file") if path.exists() else "not found"
            raise DatasetError(f"{path}: {state}; it is the benchmark's {what}", setting=setting)
    return parts[0][0], parts[1][0], parts[2][0]


def _read_truth(path: Path, layout: CopyLayout) -> tuple[pl.DataFrame, bool]:
    """The ground truth as (query, reference, transform) strings, and whether it has transforms."""
    options: dict[str, Any] = {} if path.suffix.lower() in (".parquet", ".pq") else {"infer_schema": False}
    frame = read_table(path, "copy ground truth", DatasetError, setting="ground_truth", **options)
    transform = layout.transform_column
    if transform is None and DEFAULT_TRANSFORM_COLUMN in frame.columns:
        transform = DEFAULT_TRANSFORM_COLUMN
    wanted = [
        ("query", layout.query_column, "query_column"),
        ("reference", layout.reference_column, "reference_column"),
    ]
    if transform is not None:
        wanted.append(("transform", transform, "transform_column"))
    if missing := [column for column in wanted if column[1] not in frame.columns]:  # (role, name, setting)
        named = ", ".join(f"{name} (the {role} column)" for role, name, _ in missing)
        raise DatasetError(
            f"{path}: no column {named}; its columns are {', '.join(frame.columns)}",
            setting=missing[0][2] if len(missing) == 1 else None,
        )
    columns = [pl.col(name).cast(pl.String).str.strip_chars().fill_null("").alias(role) for role, name, _ in wanted]
    frame = frame.select(columns)
    return (frame if transform else frame.with_columns(transform=pl.lit(""))), transform is not None


@dataclass(frozen=True)
class _Matched:
    """The ground truth's rows matched to images: scored queries, left-out queries, and the rows naming no file."""

    queries: dict[str, CopyQuery]
    left_out: set[str]
    missing_queries: list[str]
    missing_references: list[str]


def _match_rows(frame: pl.DataFrame, root: Path, references: _Folder, queries: _Folder, truth_path: Path) -> _Matched:
    """Raises DatasetError when a query has two rows (each query has at most one reference here)."""
    matched = _Matched({}, set(), [], [])
    for q, r, t in frame.iter_rows():
        query = queries.find(q, root) if q else None
        if query is None:
            matched.missing_queries.append(q or "(empty)")
            continue
        if query in matched.queries or query in matched.left_out:
            raise DatasetError(f"{truth_path}: query {q} has more than one row; each query has at most one reference")
        reference = references.find(r, root) if r else ""
        if reference is None:
            matched.missing_references.append(f"{q} → {r}")
            matched.left_out.add(query)
        else:
            matched.queries[query] = CopyQuery(query, reference, t)
    return matched


def load_copy_set(root: Path, layout: CopyLayout | None = None) -> CopySet:
    """Read a copy benchmark: list both folders, match the ground truth's names to their images.

    Ground-truth rows naming no image are counted in the set (not silently dropped); images of the queries folder
    the ground truth does not name are negatives (DISC21's distractor queries).

    Raises:
        DatasetError: the folder, one of its parts or a ground-truth column is missing (each named), a folder holds
            no images, a query has two ground-truth rows, or no row pairs a query with a reference.
    """
    layout = layout or CopyLayout()
    ref_dir, query_dir, truth_path = _locate(root, layout)
    frame, transforms = _read_truth(truth_path, layout)
    references = _Folder.scan(ref_dir, "references", "references_dir")
    queries = _Folder.scan(query_dir, "queries", "queries_dir")
    matched = _match_rows(frame, root, references, queries, truth_path)
    if not any(q.reference for q in matched.queries.values()):
        raise DatasetError(
            f"{truth_path}: no row pairs a query in {query_dir} with a reference in {ref_dir} ({len(frame)} rows, "
            f"{len(matched.missing_queries)} naming a missing query, {len(matched.missing_references)} a missing "
            "reference); check the query and reference column names and the folders"
        )
    unnamed = (CopyQuery(p, "", "") for p in queries.paths if p not in matched.queries and p not in matched.left_out)
    return CopySet(
        root,
        references.paths,
        (*matched.queries.values(), *unnamed),
        tuple(matched.missing_queries),
        tuple(matched.missing_references),
        transforms,
    )
