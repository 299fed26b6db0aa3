"""Dedup's view of a collection: the point table, the exact tier and the vectors that score pairs.

`load_points` scrolls a collection into a `PointTable` (vectors only when the graph is built in memory).
Exact tier: ingest keys points by uuid5(sha256), so byte-identical files collapse into one point whose payload
keeps the first path in `path` and every other file with those bytes, from all ingest runs, in `duplicate_paths`.
Those are read here, so every file of a group is listed, not just every point. Collections ingested before
`duplicate_paths` existed can still name their copies through an ingest report (`duplicate_content` rows).
`vector_lookup` and `score_fn` give the similarity of any two rows, from the table or fetched from the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.core.errors import LookalikeError
from pipeline.core.files import read_table
from pipeline.dedup.groups import PointTable, ScoreFn
from pipeline.store import VectorSpec, VectorStore
from pipeline.store.scoring import pair_similarity


def load_points(store: VectorStore, collection: str, spec: VectorSpec, with_vectors: bool) -> PointTable:
    """Scroll the whole collection into a table; vectors only when asked (preallocated: (N, D) float32)."""
    n = store.count(collection)
    vectors = np.zeros((n, spec.dim), dtype=np.float32) if with_vectors else None
    ids, paths, shas, sizes, has, copies = [], [], [], [], [], []
    for i, (pid, vec, payload) in enumerate(store.scroll(collection, spec.name if with_vectors else None)):
        if vectors is not None and i >= vectors.shape[0]:  # points added while scrolling
            vectors = np.concatenate([vectors, np.zeros_like(vectors[: max(1, i)])])
        if vectors is not None and vec is not None:
            vectors[i] = vec
        ids.append(pid)
        paths.append(str(payload.get("path", "")))
        shas.append(str(payload.get("sha256", "")))
        copies.append(tuple(str(p) for p in payload.get("duplicate_paths") or ()))
        sizes.append((int(payload.get("width") or 0), int(payload.get("height") or 0)))
        has.append(vec is not None if with_vectors else spec.name not in (payload.get("missing_vectors") or []))
    wh = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    vectors = None if vectors is None else vectors[: len(ids)]
    has_vector = np.array(has, dtype=bool)
    return PointTable(tuple(ids), tuple(paths), tuple(shas), wh[:, 0], wh[:, 1], has_vector, vectors, tuple(copies))


def read_report_copies(report: Path | None, row_of: Mapping[str, int]) -> list[tuple[int, str]]:
    """(row, resolved path) of each file an ingest report lists as byte-identical to a stored point (legacy source).

    Raises:
        LookalikeError: the file exists but is not an ingest report.
    """
    if report is None or not report.is_file():
        return []
    frame = read_table(report, "ingest report", infer_schema=False)
    if not {"path", "status", "point_id"} <= set(frame.columns):
        raise LookalikeError(f"{report}: not an ingest report (needs path, status, point_id columns)")
    rows = frame.filter(pl.col("status") == "duplicate_content").select("path", "point_id").iter_rows()
    return [(row_of[pid], str(Path(path).resolve())) for path, pid in rows if path and (pid or "") in row_of]


def exact_copies(table: PointTable, report: Path | None = None) -> dict[int, list[str]]:
    """Files byte-identical to a stored point, by that point's row: its payload `duplicate_paths` (every ingest
    run), then the legacy ingest report's rows.

    Files that no longer exist (e.g. moved by an earlier `dedup --apply`), the stored path itself and repeats are
    left out.
    """
    stored = [(row, path) for row, files in enumerate(table.duplicate_paths) for path in files]
    legacy = read_report_copies(report, {pid: i for i, pid in enumerate(table.ids)})
    candidates: dict[int, dict[str, None]] = {}  # ordered sets: a point may have thousands of copies
    for row, path in [*stored, *legacy]:
        if path != table.paths[row]:
            candidates.setdefault(row, {})[path] = None
    copies = {row: [p for p in paths if os.path.isfile(p)] for row, paths in candidates.items()}
    return {row: files for row, files in copies.items() if files}


def vector_lookup(
    store: VectorStore, collection: str, spec: VectorSpec, table: PointTable
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """rows → ((R, D) vectors, (R,) has-vector), from the table when loaded, else fetched from Qdrant."""

    def from_table(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert table.vectors is not None
        return table.vectors[rows], table.has_vector[rows]

    def from_store(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.zeros((rows.size, spec.dim), dtype=np.float32)
        ok = np.zeros(rows.size, dtype=bool)
        for start in range(0, rows.size, 512):
            chunk = rows[start : start + 512]
            found = store.get_points(collection, [table.ids[r] for r in chunk], spec.name)
            for j, r in enumerate(chunk, start=start):
                vec = found.get(table.ids[r], (None, {}))[0]
                if vec is not None:
                    vectors[j], ok[j] = vec, True
        return vectors, ok

    return from_table if table.vectors is not None else from_store


def score_fn(lookup: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], spec: VectorSpec) -> ScoreFn:
    """Similarity of each row pair (a[i], b[i]) by the collection's distance; NaN where either row lacks a vector."""

    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        rows, inverse = np.unique(np.r_[a, b], return_inverse=True)
        vectors, ok = lookup(rows)
        ia, ib = inverse[: a.size], inverse[a.size :]
        out = pair_similarity(vectors[ia], vectors[ib], spec.distance).astype(np.float64)
        out[~(ok[ia] & ok[ib])] = np.nan
        return out

    return score
