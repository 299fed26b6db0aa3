"""What `dedup` writes: groups and pairs as CSV and Parquet, a JSON summary, and the HTML gallery."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import polars as pl

from pipeline.core.files import write_bytes_atomic
from pipeline.dedup.find import DedupResult
from pipeline.dedup.gallery import GalleryLimits, write_gallery
from pipeline.dedup.groups import DupPair, Member

_MEMBER_SCHEMA: dict[str, type[pl.DataType]] = {
    "group_id": pl.Int64,
    "point_id": pl.String,
    "path": pl.String,
    "keeper": pl.Boolean,
    "tier": pl.String,
    "score": pl.Float64,
    "width": pl.Int64,
    "height": pl.Int64,
    "bytes": pl.Int64,
    "sha256": pl.String,
    "changed": pl.Boolean,
}
_PAIR_SCHEMA: dict[str, type[pl.DataType]] = {
    "group_id": pl.Int64,
    "tier": pl.String,
    "score": pl.Float64,
    "left_id": pl.String,
    "left_path": pl.String,
    "right_id": pl.String,
    "right_path": pl.String,
}


@dataclass(frozen=True)
class DedupFiles:
    """Paths of everything written for one run."""

    groups_csv: Path
    groups_parquet: Path
    pairs_csv: Path
    pairs_parquet: Path
    summary: Path
    gallery: Path


def members_frame(members: Sequence[Member]) -> pl.DataFrame:
    """One row per file in a group (columns: `_MEMBER_SCHEMA`)."""
    rows = [{**{f.name: getattr(m, f.name) for f in fields(m)}, "keeper": m.keeper} for m in members]
    return pl.DataFrame(rows, schema=_MEMBER_SCHEMA)


def pairs_frame(pairs: Sequence[DupPair]) -> pl.DataFrame:
    """One row per kept edge (columns: `_PAIR_SCHEMA`)."""
    return pl.DataFrame([asdict(p) for p in pairs], schema=_PAIR_SCHEMA)


def summary_dict(result: DedupResult, extra: Mapping[str, object]) -> dict[str, object]:
    """Settings, counts and timings of a run, plus `extra` (calibration, moves)."""
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(result.config).items()}
    return {"config": config, "vector": asdict(result.spec), "stats": asdict(result.stats), **extra}


def _write_frame(frame: pl.DataFrame, path: Path) -> None:
    """CSV or Parquet by suffix, replaced atomically: a reader (`serve`, a re-run's review) never sees half a file."""
    buffer = io.BytesIO()
    if path.suffix == ".parquet":
        frame.write_parquet(buffer)
    else:
        frame.write_csv(buffer)
    write_bytes_atomic(path, buffer.getvalue())


def write_dedup_outputs(
    result: DedupResult, out: Path, extra: Mapping[str, object] | None = None, limits: GalleryLimits | None = None
) -> DedupFiles:
    """Write groups.csv/.parquet, pairs.csv/.parquet, summary.json and gallery.html under `out`.

    Args:
        result: what `find_duplicates` found.
        out: the output folder (created).
        extra: more summary fields, e.g. {"calibration": {...}, "moves": {...}}.
        limits: caps on how much the gallery draws (default `GalleryLimits()`).

    Returns:
        The paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = DedupFiles(
        out / "groups.csv",
        out / "groups.parquet",
        out / "pairs.csv",
        out / "pairs.parquet",
        out / "summary.json",
        out / "gallery.html",
    )
    members, pairs = members_frame(result.members), pairs_frame(result.pairs)
    for frame, path in ((members, files.groups_csv), (members, files.groups_parquet)):
        _write_frame(frame, path)
    for frame, path in ((pairs, files.pairs_csv), (pairs, files.pairs_parquet)):
        _write_frame(frame, path)
    summary = summary_dict(result, extra or {})
    write_bytes_atomic(files.summary, (json.dumps(summary, indent=2, default=str) + "\n").encode())
    title = f"dedup · {result.config.collection} · threshold {result.config.threshold:g}"
    gallery = replace(limits or GalleryLimits(), threshold=result.config.threshold)
    write_gallery(result.members, title, files.gallery, summary_lines(result), gallery)
    return files


def summary_lines(result: DedupResult) -> tuple[str, ...]:
    """The run in a few lines, for the terminal and the top of the gallery."""
    s = result.stats
    block = f", block {s.block_size} rows" if s.block_size else ""
    block += f", ef {s.ef}" if s.ef else ""
    block += f", {s.nlist} lists, nprobe {s.nprobe}" if s.nlist else ""
    block += f", HNSW index built in {s.index_seconds:.1f} s" if s.index_seconds >= 0.05 else ""
    warnings: tuple[str, ...] = ()
    if s.largest_group > max(100, s.points // 20):
        warnings = (
            f"warning: the largest group holds {s.largest_group} files ({s.largest_group / s.points:.0%} of the "
            "collection): the threshold is probably too low for this encoder and chains unrelated images; "
            f"{s.chained_members} members score below the threshold against their keeper and are never moved",
        )
    return (
        f"{s.points} points ({s.points_with_vector} with a {result.spec.name} vector) · method {s.method}{block} · "
        f"k-NN {s.knn_seconds:.1f} s, total {s.seconds:.1f} s",
        f"{s.groups} groups · {s.files_in_groups} files · {s.near_pairs} near pairs ≥ {result.config.threshold:g} · "
        f"{s.exact_copy_files} byte-identical copies from the ingest report",
        f"{s.files_to_move} non-keepers, {s.bytes_reclaimable / 2**20:.1f} MiB"
        + (f" · {s.missing_files} listed files no longer exist (left out)" if s.missing_files else "")
        + (f" · {s.chained_members} only chained to their keeper (below the threshold)" if s.chained_members else ""),
        *_recall_lines(result),
        *warnings,
    )


def _recall_lines(result: DedupResult) -> tuple[str, ...]:
    r = result.stats.recall
    if r is None:
        return ()
    return (
        f"edge recall {r.recall:.4f} against exact search: {r.found} of the {r.exact_edges} exact edges "
        f"≥ {result.config.threshold:g} around {r.sampled_rows} random points",
    )
