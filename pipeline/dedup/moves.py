"""Move non-keepers out of the way, never delete: a planned or applied move list, its signed CSV manifest, and undo.

A file is moved only when, at that moment, its bytes still hash to the content it was ingested with and its keeper's
bytes still hash to theirs, and nothing is at the destination (`files.verified_move`). The manifest is written and
signed before the first move and again after the last (also when interrupted), so every move can be put back: undo
trusts only manifests lookalike signed (`signing`), and re-checks each file's sha256 before putting it back.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

import polars as pl

from pipeline.core.errors import LookalikeError, first_line
from pipeline.core.files import MoveRefused, has_content, verified_move
from pipeline.core.signing import SigningKey, read_signed, write_signed
from pipeline.dedup.groups import Member

MoveStatus = Literal["planned", "moved", "skipped", "restored", "failed"]
_COLUMNS = ("original", "moved_to", "group_id", "point_id", "sha256", "status", "reason")
_STATUSES = frozenset(("planned", "moved", "skipped", "restored", "failed"))


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


def _skip_reason(member: Member, keeper: Member | None, threshold: float | None) -> str:
    """Why a non-keeper is listed for review rather than planned, or ''."""
    if keeper is None or keeper.changed:
        return "its keeper's content changed since ingest: re-ingest, then run dedup again"
    if member.changed:
        return "content changed since ingest: re-ingest, then run dedup again"
    if threshold is not None and member.tier == "near" and not member.score >= threshold:  # NaN too
        return f"chained: score to the keeper {member.score:.4f} < threshold"
    return ""


def plan_moves(members: Sequence[Member], move_to: Path, threshold: float | None = None) -> list[Move]:
    """Every non-keeper, to `move_to` / its path below the folder common to all of them (so names never clash).

    Listed as skipped, for review, rather than planned: a file whose content (or whose keeper's content) changed
    since ingest, and with a `threshold`, a near member whose own score to the keeper is below it (it joined the
    group through a chain of other members).
    """
    movers = [m for m in members if not m.keeper]
    if not movers:
        return []
    keepers = {m.group_id: m for m in members if m.keeper}
    root = Path(os.path.commonpath([str(Path(m.path).resolve().parent) for m in movers]))
    target = move_to.resolve()
    moves = []
    for m in movers:
        move = Move(m.path, str(target / Path(m.path).resolve().relative_to(root)), m.group_id, m.point_id, m.sha256)
        if reason := _skip_reason(m, keepers.get(m.group_id), threshold):
            move = replace(move, status="skipped", reason=reason)
        moves.append(move)
    return moves


class _Keepers:
    """Each group's keeper, its content checked once, when its group's first move is about to happen."""

    def __init__(self, members: Sequence[Member]) -> None:
        self._keepers = {m.group_id: m for m in members if m.keeper}
        self._checked: dict[int, str] = {}

    def problem(self, group_id: int) -> str:
        if group_id not in self._checked:
            keeper = self._keepers.get(group_id)
            if keeper is None or not os.path.lexists(keeper.path):
                self._checked[group_id] = "its keeper no longer exists"
            elif not has_content(keeper.path, keeper.sha256):
                self._checked[group_id] = "its keeper's content changed since ingest (sha256 differs)"
            else:
                self._checked[group_id] = ""
        return self._checked[group_id]


def _apply_one(move: Move, keepers: _Keepers) -> Move:
    if reason := keepers.problem(move.group_id):
        return replace(move, status="skipped", reason=reason)
    try:
        verified_move(Path(move.original), Path(move.moved_to), move.sha256)
    except MoveRefused as e:
        return replace(move, status="skipped", reason=str(e))
    except OSError as e:
        return replace(move, status="failed", reason=e.strerror or str(e))
    return replace(move, status="moved", reason="")


def apply_moves(moves: Sequence[Move], members: Sequence[Member], manifest: Path, key: SigningKey) -> list[Move]:
    """Move each planned file, recording everything in a signed `manifest`.

    The manifest is written before the first move (all rows planned) and rewritten after the last, also when
    interrupted (Ctrl-C, SIGTERM), so an undo can always find what moved. Files that fail a check are skipped with
    the reason; filesystem errors (full disk, permissions) mark the row failed and leave the file in place; rows not
    planned (chained members, changed files) are passed through unchanged.
    """
    write_manifest(moves, manifest, key)
    keepers = _Keepers(members)
    done: list[Move] = []
    try:
        for move in moves:
            done.append(_apply_one(move, keepers) if move.status == "planned" else move)
    finally:
        write_manifest([*done, *moves[len(done) :]], manifest, key)
    return done


def manifest_path(move_to: Path) -> Path:
    """A new manifest name inside `move_to`, stamped to the second in UTC (earlier manifests are never replaced)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return move_to / f"lookalike-moves-{stamp}.csv"


def write_manifest(moves: Sequence[Move], path: Path, key: SigningKey) -> Path:
    """Signed CSV with one row per move: original, moved_to, group_id, point_id, sha256, status, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame([asdict(m) for m in moves], schema=dict.fromkeys(_COLUMNS, pl.String))
    text = frame.with_columns(pl.col("group_id").cast(pl.Int64)).write_csv()
    write_signed(path, text.encode("utf-8", "surrogateescape"), key)
    return path


def read_manifest(path: Path, key: SigningKey) -> list[Move]:
    """The moves a manifest records, if lookalike signed it with `key`.

    Raises:
        LookalikeError: the file is missing, unsigned, edited since lookalike wrote it, or malformed.
    """
    if not path.is_file():
        raise LookalikeError(
            f"{path}: no such manifest (dedup writes lookalike-moves-*.csv into the folder it moves non-keepers to, "
            "when it applies moves)",
            setting="undo",
        )
    data = read_signed(path, key)
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except pl.exceptions.PolarsError as e:
        raise LookalikeError(f"{path}: not a lookalike move manifest ({first_line(e)})") from None
    if missing := [c for c in _COLUMNS if c not in frame.columns]:
        raise LookalikeError(f"{path}: not a lookalike move manifest (missing columns {', '.join(missing)})")
    return [_row_move(path, i, r) for i, r in enumerate(frame.iter_rows(named=True), start=2)]


def _row_move(path: Path, line: int, row: dict[str, str | None]) -> Move:
    status = row["status"] or ""
    group = row["group_id"] or ""
    if status not in _STATUSES or not group.isdigit():
        raise LookalikeError(f"{path}: line {line}: status {status!r} / group_id {group!r} not understood")
    text = {c: row[c] or "" for c in ("original", "moved_to", "point_id", "sha256", "reason")}
    return Move(
        text["original"],
        text["moved_to"],
        int(group),
        text["point_id"],
        text["sha256"],
        cast(MoveStatus, status),  # checked against _STATUSES
        text["reason"],
    )


def _restore(move: Move) -> Move:
    """Put one moved file back, if it still has its recorded content and its old place is free."""
    if not move.original or not move.moved_to:
        return replace(move, status="failed", reason="the row names no original or moved_to path")
    if os.path.lexists(move.original):
        return replace(move, status="failed", reason="original path is taken; move it away and undo again")
    try:
        verified_move(Path(move.moved_to), Path(move.original), move.sha256)
    except MoveRefused as e:
        return replace(move, status="failed", reason=f"moved file: {e}")
    except OSError as e:
        return replace(move, status="failed", reason=e.strerror or str(e))
    return replace(move, status="restored", reason="")


def _undo_one(move: Move) -> Move:
    if move.status == "moved":
        return _restore(move)
    if move.status == "planned":  # the apply was interrupted: put back what moved, by content
        if os.path.lexists(move.original) or not os.path.lexists(move.moved_to):
            return replace(move, status="skipped", reason="never moved (the apply stopped before it)")
        return _restore(move)
    return move


def undo_moves(path: Path, key: SigningKey) -> list[Move]:
    """Put every moved file of a signed manifest back, then rewrite (and re-sign) the manifest with what happened.

    Each file goes back only if it still hashes to its recorded sha256 and its original path is free; otherwise the
    row fails with the reason and stays `moved` in the manifest (its reason saying why), so a second undo can finish
    the job. Rows already restored or never moved keep their status and reason.

    Raises:
        LookalikeError: see `read_manifest`; nothing is moved then.
    """
    result = [_undo_one(m) for m in read_manifest(path, key)]
    kept = [
        replace(m, status="moved", reason=f"undo failed: {m.reason}") if m.status == "failed" else m for m in result
    ]
    write_manifest(kept, path, key)
    return result
