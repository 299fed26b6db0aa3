"""The collections view: counts, encoders and versions, a few sample points; the eval reports already written under
`runs/eval/`, served read-only from that folder only, by name."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from pipeline.serve.search import thumb_url
from pipeline.serve.state import ServeState

REPORT_FILES = ("report.html", "metrics.json")  # the only files served from a report folder
SAMPLES = 8


@dataclass(frozen=True)
class EvalReport:
    """One folder of runs/eval: its name, and what its metrics.json says it measured."""

    name: str
    collection: str | None
    protocol: str | None
    encoder: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class CollectionSummary:
    """What the collections view shows of one collection."""

    name: str
    backend: str
    points: int
    index: str
    encoders: tuple[tuple[str, str, str], ...]  # (vector name, encoder spec, version)
    samples: tuple[str, ...]  # point ids


def list_reports(eval_dir: Path) -> list[EvalReport]:
    """Every sub-folder of `eval_dir` holding a report.html, by name."""
    if not eval_dir.is_dir():
        return []
    reports = []
    for entry in sorted(os.scandir(eval_dir), key=lambda e: e.name):
        if entry.is_dir() and (Path(entry.path) / "report.html").is_file():
            reports.append(_report(entry.name, Path(entry.path) / "metrics.json"))
    return reports


def _report(name: str, metrics_file: Path) -> EvalReport:
    try:
        data = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    metrics = data.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    shown = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    text = {k: data[k] if isinstance(data.get(k), str) else None for k in ("collection", "protocol", "encoder")}
    return EvalReport(name, text["collection"], text["protocol"], text["encoder"], shown)


def report_file(eval_dir: Path, name: str, file: str) -> Path:
    """The file `file` of report folder `name`, if both are listed (no path from the request is ever joined
    unchecked: `name` must be one of the folder's entries, `file` one of REPORT_FILES, and the result must lie
    inside `eval_dir` once links are resolved).

    Raises:
        HTTPException: 404 otherwise.
    """
    if file not in REPORT_FILES or name not in {r.name for r in list_reports(eval_dir)}:
        raise HTTPException(404, f"no eval report {name!r}/{file!r} under {eval_dir}")
    path = (eval_dir / name / file).resolve()
    if not path.is_relative_to(eval_dir.resolve()) or not path.is_file():
        raise HTTPException(404, f"no eval report {name!r}/{file!r} under {eval_dir}")
    return path


def describe(state: ServeState, name: str) -> CollectionSummary:
    """Counts, encoders with versions, and the first few points of a collection.

    Raises:
        HTTPException: 404 for an unknown collection.
    """
    state.require_collection(name)
    with state.engine() as store:
        info = store.info(name)
        samples = tuple(pid for pid, _, _ in itertools.islice(store.scroll(name, batch=SAMPLES), SAMPLES))
    versions = info.catalog.versions
    encoders = tuple((v, spec, versions.get(v, "version unknown")) for v, spec in info.catalog.encoders.items())
    single = any(not s.multivector for s in info.specs.values())
    index = "HNSW" if single and info.indexed_vectors > 0 else "exact scan"
    return CollectionSummary(name, info.backend, info.points, index, encoders, samples)


def collection_json(summary: CollectionSummary, reports: list[EvalReport]) -> dict[str, Any]:
    """A collection as the API returns it, with the eval reports that name it."""
    return {
        "name": summary.name,
        "backend": summary.backend,
        "points": summary.points,
        "index": summary.index,
        "encoders": [{"vector": v, "encoder": e, "version": ver} for v, e, ver in summary.encoders],
        "samples": [{"point_id": p, "thumb": thumb_url(summary.name, p)} for p in summary.samples],
        "reports": [report_json(r) for r in reports if r.collection == summary.name],
    }


def report_json(report: EvalReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "collection": report.collection,
        "protocol": report.protocol,
        "encoder": report.encoder,
        "metrics": report.metrics,
        "url": f"/reports/{report.name}/report.html",
    }
