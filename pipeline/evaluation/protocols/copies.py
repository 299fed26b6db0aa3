"""Copy-detection protocol (DISC21 style) on a folder made by `lookalike bench copies`.

References and queries are ingested into one collection (payload group "reference" / "query"); every query
asks Qdrant for its k best references (a payload filter keeps queries out of the results), and the pooled
(query, reference, score) predictions are scored: µAP, recall at 90 % precision, and recall@1 per transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.core.conventions import vector_name
from pipeline.core.errors import DatasetError
from pipeline.core.files import read_table
from pipeline.core.records import Hit, ImageRecord
from pipeline.evaluation.report import FailureCase, RankedItem, ReportContent
from pipeline.evaluation.runner import EvalOutput
from pipeline.evaluation.setup import EvalResult, EvalSetup, fetch_vectors, ingest_for_eval, timed
from pipeline.metrics.copies import micro_average_precision, recall_at_precision
from pipeline.store import where_filter


@dataclass(frozen=True)
class CopyQuery:
    """One query image; `reference` is the true original's path, "" for a negative (no copy in the set)."""

    path: str
    reference: str
    transform: str


@dataclass(frozen=True)
class CopySet:
    """A benchmark folder: the references and the queries with ground truth (absolute paths)."""

    root: Path
    references: tuple[str, ...]
    queries: tuple[CopyQuery, ...]


def load_copy_set(root: Path) -> CopySet:
    """Read `ground_truth.csv` and list `references/`.

    Raises:
        DatasetError: the folder was not made by `lookalike bench copies`.
    """
    truth_csv, ref_dir = root / "ground_truth.csv", root / "references"
    if not truth_csv.is_file() or not ref_dir.is_dir():
        raise DatasetError(f"{root}: no ground_truth.csv and references/; make one with `lookalike bench copies`")
    frame = read_table(truth_csv, "copy ground truth", DatasetError, infer_schema=False).fill_null("")
    if missing := {"query", "reference", "transform"} - set(frame.columns):
        raise DatasetError(f"{truth_csv}: missing column(s) {', '.join(sorted(missing))}")
    queries = tuple(
        CopyQuery(str(root / q), str(root / r) if r else "", t)
        for q, r, t in frame.select("query", "reference", "transform").iter_rows()
    )
    references = tuple(str(p) for p in sorted(ref_dir.iterdir()) if p.is_file())
    return CopySet(root, references, queries)


def _ranked(setup: EvalSetup, copy_set: CopySet, k: int) -> tuple[dict[str, list[Hit]], dict[str, int]]:
    """Ingest everything, then the top-k references of every query that has a vector (by query path)."""
    records = [ImageRecord(p, label=Path(p).name, group="reference") for p in copy_set.references]
    records += [ImageRecord(q.path, group="query") for q in copy_set.queries]
    summary = ingest_for_eval(setup, records)
    ids = summary.point_ids
    vectors = fetch_vectors(setup, [ids[q.path] for q in copy_set.queries if q.path in ids])
    good = [q for q in copy_set.queries if ids.get(q.path) in vectors]
    only_refs = where_filter({"group": "reference"})
    queries = np.stack([vectors[ids[q.path]] for q in good]) if good else np.zeros((0, setup.spec.dim), np.float32)
    hits = setup.store.query(setup.collection, setup.spec, queries, k, only_refs, exact=True) if good else []
    counts = {"references": len(copy_set.references), "queries": len(copy_set.queries), "ingest_failed": summary.failed}
    return {q.path: row for q, row in zip(good, hits, strict=True)}, counts


def copy_metrics(copy_set: CopySet, ranked: dict[str, list[Hit]]) -> dict[str, float | None]:
    """µAP and recall@P90 over the pooled predictions; recall@1 over copies, overall and per transform."""
    copies = [q for q in copy_set.queries if q.reference]
    scores = [h.score for q in copy_set.queries for h in ranked.get(q.path, [])]
    is_true = [
        bool(q.reference) and h.path == str(Path(q.reference).resolve())
        for q in copy_set.queries
        for h in ranked.get(q.path, [])
    ]
    top1 = {q.path: _first_is_true(q, ranked.get(q.path, [])) for q in copies}
    recall_at_p90, threshold_at_p90 = recall_at_precision(scores, is_true, len(copies), 0.9)
    metrics: dict[str, float | None] = {
        "micro_ap": micro_average_precision(scores, is_true, len(copies)),
        "recall_at_p90": recall_at_p90,
        "threshold_at_p90": threshold_at_p90 if np.isfinite(threshold_at_p90) else None,
        "recall_at_1": float(np.mean(list(top1.values()))) if copies else None,
    }
    for kind in sorted({transform_kind(q.transform) for q in copies}):
        metrics[f"recall_at_1_{kind}"] = float(
            np.mean([top1[q.path] for q in copies if transform_kind(q.transform) == kind])
        )
    return metrics


def transform_kind(transform: str) -> str:
    """The transform's name, or "combo" for a chain such as "crop+text"."""
    return "combo" if "+" in transform else transform


def _first_is_true(query: CopyQuery, hits: list[Hit]) -> bool:
    return bool(hits) and hits[0].path == str(Path(query.reference).resolve())


def _failures(copy_set: CopySet, ranked: dict[str, list[Hit]], limit: int = 40) -> tuple[FailureCase, ...]:
    """Copies whose best reference is wrong, the most confidently wrong first."""
    wrong = [q for q in copy_set.queries if q.reference and not _first_is_true(q, ranked.get(q.path, []))]
    wrong.sort(key=lambda q: -(ranked[q.path][0].score if ranked.get(q.path) else -np.inf))
    cases = []
    for q in wrong[:limit]:
        truth = str(Path(q.reference).resolve())
        top = tuple(RankedItem(h.path, h.score, h.path == truth) for h in ranked.get(q.path, [])[:5])
        cases.append(FailureCase(q.path, (q.reference,), top, f"{q.transform}: the original is not ranked first"))
    return tuple(cases)


def write_hard_pairs(copy_set: CopySet, ranked: dict[str, list[Hit]], path: Path) -> Path:
    """Every prediction as a labelled pair (left,right,same) for `dedup --precision P --pairs FILE`.

    Unlike random pairs, these negatives are each query's nearest wrong references, as many as dedup meets,
    so the precision they calibrate is close to the precision of dedup's own edges.
    """
    truth = {q.path: str(Path(q.reference).resolve()) if q.reference else "" for q in copy_set.queries}
    rows = [(str(Path(q).resolve()), h.path, int(h.path == truth[q])) for q, hits in ranked.items() for h in hits]
    pl.DataFrame(rows, schema={"left": pl.String, "right": pl.String, "same": pl.Int64}, orient="row").write_csv(path)
    return path


def eval_copies(setup: EvalSetup, root: Path, k: int = 10) -> EvalOutput:
    """Copy detection on a `bench copies` folder: µAP, recall@P90, recall@1 (overall and per transform)."""
    start = timed()
    copy_set = load_copy_set(root)
    ranked, counts = _ranked(setup, copy_set, k)
    metrics = copy_metrics(copy_set, ranked)
    n_copies = sum(1 for q in copy_set.queries if q.reference)
    counts.update(copies=n_copies, queries_without_vector=len(copy_set.queries) - len(ranked))
    pairs = write_hard_pairs(copy_set, ranked, root / f"pairs-hard-{vector_name(setup.encoder.name)}.csv")
    notes = (
        f"{k} predictions per query; µAP pools every (query, reference, score) as in DISC21",
        f"predictions as labelled pairs for `lookalike dedup --precision P --pairs {pairs}`",
    )
    result = EvalResult(
        "copies", str(root), setup.encoder.name, setup.collection, 0, counts, metrics, timed() - start, notes, {"k": k}
    )
    title = f"copies · {root.name} · {setup.encoder.name}"
    return EvalOutput(result, ReportContent(title, {**metrics, **counts}, _failures(copy_set, ranked), notes=notes))
