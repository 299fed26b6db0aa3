"""`dedup --new`'s report: new-duplicates.csv/.parquet (one row per listed entry), summary.json and the terminal
lines. Kept apart from `output` (which `run` imports) because it reads `incremental`'s records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import polars as pl

from pipeline.dedup.graph import DedupMethod
from pipeline.dedup.incremental import NewCheck
from pipeline.dedup.new_records import STATUSES, NewFile

_NEW_SCHEMA: dict[str, type[pl.DataType]] = {
    "new_path": pl.String,
    "status": pl.String,
    "match_path": pl.String,
    "match_point_id": pl.String,
    "score": pl.Float64,
    "reason": pl.String,
}


def new_frame(files: Sequence[NewFile]) -> pl.DataFrame:
    """One row per listed entry (columns: new_path, status, match_path, match_point_id, score, reason)."""
    rows = [{"new_path": f.path, **{k: v for k, v in asdict(f).items() if k != "path"}} for f in files]
    return pl.DataFrame(rows, schema=_NEW_SCHEMA)


def new_summary(check: NewCheck) -> dict[str, object]:
    """summary.json: what was checked, how, the counts per status and the seconds per step."""
    graph = check.request.graph
    return {
        "collection": check.request.collection,
        "source": str(check.request.source),
        "encoder": check.encoder,
        "vector": asdict(check.spec),
        "threshold": check.threshold,
        "calibration": asdict(check.calibration) if check.calibration else None,
        "search": {"k": graph.k, "method": str(check.method), "ef": graph.ef if check.method == "ann" else None},
        "files": len(check.files),
        "counts": check.counts(),
        "seconds": asdict(check.seconds),
    }


def write_new_outputs(check: NewCheck) -> None:
    """Write new-duplicates.csv, new-duplicates.parquet and summary.json (folder created)."""
    check.report_csv.parent.mkdir(parents=True, exist_ok=True)
    frame = new_frame(check.files)
    frame.write_csv(check.report_csv)
    frame.write_parquet(check.report_parquet)
    check.summary.write_text(json.dumps(new_summary(check), indent=2, default=str) + "\n")


def new_summary_lines(check: NewCheck) -> tuple[str, ...]:
    """The check in a few lines for the terminal: one per count (indexed and skipped only when there are some)."""
    counts, t, s = check.counts(), check.threshold, check.seconds
    what = {
        "exact": "same bytes as an indexed image",
        "near": f"similar ≥ {t:g} to an indexed image",
        "within_new": "duplicate of another new file (same bytes, or similar to one ranked before it)",
        "unique": "no duplicate found",
        "indexed": "already in the collection",
        "skipped": "not an image file name",
        "failed": "could not be read, decoded or embedded (reasons in new-duplicates.csv)",
    }
    search = f"ann ef {check.request.graph.ef}" if check.method == DedupMethod.ANN else "exact"
    head = (
        f"{len(check.files)} new files against {check.request.collection} ({check.encoder}, threshold {t:g}, "
        f"{search} search): "
        f"{s.total:.1f} s (hash {s.hashing:.1f} s, embed {s.embedding:.1f} s, search {s.search:.1f} s)"
    )
    shown = [k for k in STATUSES if counts[k] or k not in ("indexed", "skipped")]
    return (head, *(f"{k:<10} {counts[k]:>7,}  {what[k]}" for k in shown))
