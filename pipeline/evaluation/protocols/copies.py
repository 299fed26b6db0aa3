"""Copy-detection protocol (DISC21 style) on any copy benchmark: `bench copies` output, DISC21 or a user's own set.

A benchmark is a folder of references, a folder of queries and a ground-truth table of (query, reference[,
transform]) rows; `CopyLayout` names them (defaults: the layout `lookalike bench copies` writes). References and
queries are ingested into one collection (payload group "reference" / "query"); every query asks Qdrant for its best
references (a payload filter keeps queries out of the results), and the pooled (query, reference, score) predictions
are scored: µAP, recall at 90 % precision, and recall@1 per transform, ties always counted against the true reference.

Here: the queries' ranked references, their scores, the report and hard pairs; reading the benchmark: `copy_set`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.core.conventions import vector_name
from pipeline.core.files import display_path
from pipeline.core.records import Hit, ImageRecord
from pipeline.evaluation.protocols.copy_set import CopySet
from pipeline.evaluation.report import FailureCase, RankedItem, ReportContent
from pipeline.evaluation.runner import EvalOutput
from pipeline.evaluation.setup import EvalResult, EvalSetup, fetch_vectors, ingest_for_eval, timed
from pipeline.metrics.copies import micro_average_precision, recall_at_precision, reference_ranks
from pipeline.store import where_filter


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
