"""Move non-keepers out of the way, never delete: a planned or applied move list, its CSV manifest, and undo.

A file is moved only when its bytes still hash to the content it was ingested with, its keeper still exists, and
nothing is at the destination; every move is recorded, so `undo_moves` can put each file back.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import polars as pl

from pipeline.dedup_groups import Member
from pipeline.errors import LookalikeError
from pipeline.ingest import sha256_file

MoveStatus = Literal["planned", "moved", "skipped", "restored", "failed"]
_COLUMNS = ("original", "moved_to", "group_id", "point_id", "sha256", "status", "reason")


@dataclass(frozen=True)
class Move:
    """One file to move (or moved, or put back) and why not, when it was not."""

    original: str
    moved_to: str
    group_id: int
    point_id: str
    sha256: str
    status: MoveStatus = "planned"
    reason: str = ""


def plan_moves(members: Sequence[Member], move_to: Path, threshold: float | None = None) -> list[Move]:
    """Every non-keeper, to `move_to` / its path below the folder common to all of them (so names never clash).

    With a `threshold`, a near member whose own score to the keeper is below it (it joined the group through a
    chain of other members) is listed as skipped, for review, rather than planned.
    """
    movers = [m for m in members if not m.keeper]
    if not movers:
        return []
    root = Path(os.path.commonpath([str(Path(m.path).resolve().parent) for m in movers]))
    target = move_to.resolve()
    moves = []
    for m in movers:
        move = Move(m.path, str(target / Path(m.path).resolve().relative_to(root)), m.group_id, m.point_id, m.sha256)
        if threshold is not None and m.tier == "near" and not m.score >= threshold:  # NaN too
            move = replace(move, status="skipped", reason=f"chained: score to the keeper {m.score:.4f} < threshold")
        moves.append(move)
    return moves


def _check(move: Move, keepers: dict[int, str]) -> str:
    """Why this move must not happen, or ''."""
    if not Path(move.original).is_file():
        return "file no longer exists"
    if not Path(keepers.get(move.group_id, "")).is_file():
        return "its keeper no longer exists"
    if Path(move.moved_to).exists():
        return "destination exists"
    if move.sha256 and sha256_file(move.original) != move.sha256:
        return "content changed since ingest"
    return ""


def apply_moves(moves: Sequence[Move], members: Sequence[Member]) -> list[Move]:
    """Move each planned file (creating folders); files that fail a check are skipped with the reason, and
    moves not planned (chained members) are passed through unchanged."""
    keepers = {m.group_id: m.path for m in members if m.keeper}
    done: list[Move] = []
    for move in moves:
        if move.status != "planned":
            done.append(move)
            continue
        reason = _check(move, keepers)
        if reason:
            done.append(replace(move, status="skipped", reason=reason))
            continue
        try:
            Path(move.moved_to).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(move.original, move.moved_to)
        except OSError as e:
            done.append(replace(move, status="failed", reason=str(e)))
        else:
            done.append(replace(move, status="moved", reason=""))
    return done


def manifest_path(move_to: Path) -> Path:
    """A new manifest name inside `move_to`, stamped to the second in UTC (earlier manifests are never replaced)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return move_to / f"lookalike-moves-{stamp}.csv"


def write_manifest(moves: Sequence[Move], path: Path) -> Path:
    """CSV with one row per move: original, moved_to, group_id, point_id, sha256, status, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame([asdict(m) for m in moves], schema=dict.fromkeys(_COLUMNS, pl.String))
    frame.with_columns(pl.col("group_id").cast(pl.Int64)).write_csv(path)
    return path


def read_manifest(path: Path) -> list[Move]:
    """The moves a manifest records.

    Raises:
        LookalikeError: the file is missing or lacks the manifest columns.
    """
    if not path.is_file():
        raise LookalikeError(f"{path}: no such manifest (dedup --apply writes lookalike-moves-*.csv in --move-to)")
    frame = pl.read_csv(path, infer_schema=False)
    if missing := [c for c in _COLUMNS if c not in frame.columns]:
        raise LookalikeError(f"{path}: not a lookalike move manifest (missing columns {', '.join(missing)})")
    return [
        Move(r["original"], r["moved_to"], int(r["group_id"]), r["point_id"] or "", r["sha256"] or "", r["status"])
        for r in frame.iter_rows(named=True)
    ]


def undo_moves(path: Path) -> list[Move]:
    """Put every moved file of a manifest back, then rewrite the manifest with what happened.

    Files already back (status restored) or never moved are left alone; a file whose original path is taken
    again is not overwritten (status failed, with the reason), so a second undo can finish the job.
    """
    moves = read_manifest(path)
    result: list[Move] = []
    for move in moves:
        if move.status != "moved":
            result.append(move)
        elif Path(move.original).exists():
            result.append(replace(move, status="failed", reason="original path is taken; move it away and undo again"))
        elif not Path(move.moved_to).is_file():
            result.append(replace(move, status="failed", reason="moved file is gone"))
        else:
            Path(move.original).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(move.moved_to, move.original)
            result.append(replace(move, status="restored", reason=""))
    write_manifest([replace(m, status="moved") if m.status == "failed" else m for m in result], path)
    return result
