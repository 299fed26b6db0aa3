"""Copy-detection protocol (DISC21 style) on any copy benchmark: `bench copies` output, DISC21 or a user's own set.

A benchmark is a folder of references, a folder of queries and a ground-truth table of (query, reference[,
transform]) rows; `CopyLayout` names them (defaults: the layout `lookalike bench copies` writes). References and
queries are ingested into one collection (payload group "reference" / "query"); every query asks Qdrant for its best
references (a payload filter keeps queries out of the results), and the pooled (query, reference, score) predictions
are scored: µAP, recall at 90 % precision, and recall@1 per transform, ties always counted against the true reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.core.conventions import vector_name
from pipeline.core.errors import DatasetError
from pipeline.core.files import display_path, read_table
from pipeline.core.records import Hit, ImageRecord
from pipeline.evaluation.report import FailureCase, RankedItem, ReportContent
from pipeline.evaluation.runner import EvalOutput
from pipeline.evaluation.setup import EvalResult, EvalSetup, fetch_vectors, ingest_for_eval, timed
from pipeline.index.sources import list_source
from pipeline.metrics.copies import micro_average_precision, recall_at_precision, reference_ranks
from pipeline.store import where_filter

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


def _stored(path: str) -> str:
    """A file's path as the store's payload holds it (resolved, display form), to compare with `Hit.path`."""
    return display_path(str(Path(path).resolve())) if path else ""


def _ranked(setup: EvalSetup, copy_set: CopySet, depth: int) -> tuple[dict[str, list[Hit]], dict[str, int]]:
    """Ingest everything, then the `depth` best references of every query that has a vector (by query path)."""
    records = [ImageRecord(p, label=Path(p).name, group="reference") for p in copy_set.references]
    records += [ImageRecord(q.path, group="query") for q in copy_set.queries]
    summary = ingest_for_eval(setup, records)
    ids = summary.point_ids
    vectors = fetch_vectors(setup, [ids[q.path] for q in copy_set.queries if q.path in ids])
    good = [q for q in copy_set.queries if ids.get(q.path) in vectors]
    only_refs = where_filter({"group": "reference"})
    queries = np.stack([vectors[ids[q.path]] for q in good]) if good else np.zeros((0, setup.spec.dim), np.float32)
    hits = setup.store.query(setup.collection, setup.spec, queries, depth, only_refs, exact=True) if good else []
    counts = {"references": len(copy_set.references), "queries": len(copy_set.queries), "ingest_failed": summary.failed}
    return {q.path: row for q, row in zip(good, hits, strict=True)}, counts


def copy_ranks(copy_set: CopySet, ranked: dict[str, list[Hit]]) -> dict[str, int]:
    """Pessimistic rank of each copy's original among the references found for it (0: not found), by query path.

    An original tied with a wrong reference ranks below it, whatever order the engine returned them in.
    """
    copies = [q for q in copy_set.queries if q.reference]
    width = max((len(ranked.get(q.path, [])) for q in copies), default=0)
    scores = np.full((len(copies), width), np.nan)  # (Q, K) NaN pads queries with fewer hits
    is_true = np.zeros((len(copies), width), dtype=bool)  # (Q, K)
    for i, q in enumerate(copies):
        hits, truth = ranked.get(q.path, []), _stored(q.reference)
        scores[i, : len(hits)] = [h.score for h in hits]
        is_true[i, : len(hits)] = [h.path == truth for h in hits]
    return {q.path: int(r) for q, r in zip(copies, reference_ranks(scores, is_true), strict=True)}


def copy_metrics(copy_set: CopySet, ranked: dict[str, list[Hit]], k: int) -> dict[str, float | None]:
    """µAP and recall@P90 over the first k predictions of every query (negatives included, as in DISC21);
    recall@1 over copies, overall and per transform, ties counted against the original.

    `ranked` should hold k + 1 hits per query, so that a wrong reference tied with the original at rank k is seen.
    """
    truth = {q.path: _stored(q.reference) for q in copy_set.queries}
    pooled = [(h.score, bool(truth[q]) and h.path == truth[q]) for q, hits in ranked.items() for h in hits[:k]]
    scores, is_true = [s for s, _ in pooled], [t for _, t in pooled]
    copies = [q for q in copy_set.queries if q.reference]
    top1 = {path: rank == 1 for path, rank in copy_ranks(copy_set, ranked).items()}
    recall_at_p90, threshold_at_p90 = recall_at_precision(scores, is_true, len(copies), 0.9)
    metrics: dict[str, float | None] = {
        "micro_ap": micro_average_precision(scores, is_true, len(copies)),
        "recall_at_p90": recall_at_p90,
        "threshold_at_p90": threshold_at_p90 if np.isfinite(threshold_at_p90) else None,
        "recall_at_1": float(np.mean(list(top1.values()))),
    }
    for kind in sorted({transform_kind(q.transform) for q in copies} if copy_set.transforms else set()):
        metrics[f"recall_at_1_{kind}"] = float(
            np.mean([top1[q.path] for q in copies if transform_kind(q.transform) == kind])
        )
    return metrics


def transform_kind(transform: str) -> str:
    """The transform's name, "combo" for a chain such as "crop+text", "unlabelled" when empty."""
    return "combo" if "+" in transform else transform or "unlabelled"


def _failures(
    copy_set: CopySet, ranked: dict[str, list[Hit]], ranks: dict[str, int], k: int, limit: int = 40
) -> tuple[FailureCase, ...]:
    """Copies whose original is not strictly first, the most confidently wrong first."""
    wrong = [q for q in copy_set.queries if q.reference and ranks[q.path] != 1]
    wrong.sort(key=lambda q: -(ranked[q.path][0].score if ranked.get(q.path) else -np.inf))
    cases = []
    for q in wrong[:limit]:
        truth, rank = _stored(q.reference), ranks[q.path]
        top = tuple(RankedItem(h.path, h.score, h.path == truth) for h in ranked.get(q.path, [])[:5])
        where = f"ranks {rank} (ties count against it)" if rank else f"is not among the {k} best references"
        cases.append(FailureCase(q.path, (q.reference,), top, f"{q.transform or 'copy'}: the original {where}"))
    return tuple(cases)


def write_hard_pairs(copy_set: CopySet, ranked: dict[str, list[Hit]], path: Path, k: int) -> Path:
    """Each query's first k predictions as labelled pairs (left,right,same) for `dedup --precision P --pairs FILE`.

    Unlike random pairs, these negatives are each query's nearest wrong references, as many as dedup meets,
    so the precision they calibrate is close to the precision of dedup's own edges.
    """
    truth = {q.path: _stored(q.reference) for q in copy_set.queries}
    rows = [(_stored(q), h.path, int(h.path == truth[q])) for q, hits in ranked.items() for h in hits[:k]]
    pl.DataFrame(rows, schema={"left": pl.String, "right": pl.String, "same": pl.Int64}, orient="row").write_csv(path)
    return path


def _pairs_path(root: Path, setup: EvalSetup) -> Path:
    """`pairs-hard-<encoder>.csv` in the benchmark folder, or in the report folder when that one is read-only."""
    name = f"pairs-hard-{vector_name(setup.encoder.name)}.csv"
    if os.access(root, os.W_OK):
        return root / name
    setup.report_dir.mkdir(parents=True, exist_ok=True)
    return setup.report_dir / f"{root.name}-{name}"


def _notes(copy_set: CopySet, k: int, pairs: Path) -> tuple[str, ...]:
    """What a reader needs to know about how the numbers were made, and which ground-truth rows named no file."""
    negatives = sum(1 for q in copy_set.queries if not q.reference)
    notes = [
        f"{k} predictions per query; µAP pools every (query, reference, score) as in DISC21, the {negatives} "
        "queries with no reference included (each of their predictions is a false positive)",
        "recall@1 counts a copy only when its original scores strictly above every other reference",
        f"predictions as labelled pairs for `lookalike dedup --precision P --pairs {pairs}`",
    ]
    for names, what in ((copy_set.missing_queries, "a query"), (copy_set.missing_references, "a reference")):
        if names:
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            notes.append(f"{len(names)} ground-truth rows name {what} with no image, left out: {shown}")
    if not copy_set.transforms:
        notes.append("the ground truth has no transform column: no recall@1 per transform")
    return tuple(notes)


def eval_copies(setup: EvalSetup, copy_set: CopySet, k: int = 10) -> EvalOutput:
    """Copy detection on a loaded benchmark (`load_copy_set`): µAP, recall@P90, recall@1 (overall, per transform)."""
    start = timed()
    ranked, counts = _ranked(setup, copy_set, k + 1)  # one more, to see a wrong reference tied at rank k
    metrics = copy_metrics(copy_set, ranked, k)
    n_copies = sum(1 for q in copy_set.queries if q.reference)
    counts.update(
        copies=n_copies,
        negatives=len(copy_set.queries) - n_copies,
        queries_without_vector=len(copy_set.queries) - len(ranked),
        truth_rows_missing_query=len(copy_set.missing_queries),
        truth_rows_missing_reference=len(copy_set.missing_references),
    )
    root = copy_set.root
    pairs = write_hard_pairs(copy_set, ranked, _pairs_path(root, setup), k)
    notes = _notes(copy_set, k, pairs)
    result = EvalResult(
        "copies", str(root), setup.encoder.name, setup.collection, 0, counts, metrics, timed() - start, notes, {"k": k}
    )
    title = f"copies · {root.name} · {setup.encoder.name}"
    failures = _failures(copy_set, ranked, copy_ranks(copy_set, ranked), k)
    return EvalOutput(result, ReportContent(title, {**metrics, **counts}, failures, notes=notes))
