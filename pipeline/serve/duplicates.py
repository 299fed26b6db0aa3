"""Review a dedup run page by page, change keepers, and plan or apply moves through `pipeline.dedup.moves` (the
same checked, signed, undoable moves as `lookalike dedup --apply`; nothing is ever deleted).

A run's groups.parquet is scanned lazily: a page reads its group ids' rows only, so 100k groups never load at once.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.errors import LookalikeError, first_line
from pipeline.core.signing import SigningKey
from pipeline.dedup.groups import Member
from pipeline.dedup.moves import Move, apply_moves, manifest_path, plan_moves
from pipeline.store import VectorSpec

MEMBER_FIELDS = tuple(f.name for f in fields(Member))
KeeperScores = Callable[[Sequence[str], str], dict[str, float]]  # (point ids, keeper's id) → score to the keeper


@dataclass(frozen=True)
class DedupRunInfo:
    """A dedup output folder: where, for which collection, at which threshold, how many groups and files."""

    folder: Path
    collection: str
    threshold: float | None
    encoder: str | None
    vector: VectorSpec | None
    groups: int
    files: int


@dataclass(frozen=True)
class GroupPage:
    """One page of groups, each group's members keeper first."""

    page: int
    pages: int
    groups: tuple[tuple[Member, ...], ...]


@dataclass(frozen=True)
class KeeperChoice:
    """Act on group `group_id`, keeping the file at `keeper` (one of the group's listed paths)."""

    group_id: int
    keeper: str


@dataclass(frozen=True)
class MoveOutcome:
    """Planned or applied moves; `manifest` is the signed manifest of an apply (undo it with `undo`)."""

    move_to: Path
    moves: tuple[Move, ...]
    manifest: Path | None = None

    @property
    def undo(self) -> str | None:
        return f"lookalike dedup --undo {shlex.quote(str(self.manifest))}" if self.manifest else None


def _groups_file(folder: Path) -> Path:
    return folder / "groups.parquet"


def _scan(folder: Path) -> pl.LazyFrame:
    """The groups file, lazily, after checking it has the columns of a dedup run.

    Raises:
        LookalikeError: it is not a dedup groups file.
    """
    scan = pl.scan_parquet(_groups_file(folder))
    try:
        columns = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise LookalikeError(f"{_groups_file(folder)}: unreadable ({first_line(e)})") from None
    if missing := [c for c in MEMBER_FIELDS if c not in columns]:
        raise LookalikeError(f"{_groups_file(folder)}: not a lookalike dedup run (no {', '.join(missing)} columns)")
    return scan


def read_run(folder: Path, collection: str) -> DedupRunInfo | None:
    """The run in `folder` (None when it holds none yet); threshold and encoder come from its summary.json.

    Raises:
        LookalikeError: the groups file is not a dedup run's.
    """
    if not _groups_file(folder).is_file():
        return None
    counts = _scan(folder).select(pl.col("group_id").n_unique().alias("g"), pl.len().alias("n")).collect()
    summary = _summary(folder)
    config, vector = summary.get("config") or {}, summary.get("vector") or {}
    spec = VectorSpec(**vector) if set(vector) == {"name", "dim", "distance", "multivector"} else None
    threshold = config.get("threshold")
    return DedupRunInfo(
        folder,
        str(config.get("collection") or collection),
        float(threshold) if isinstance(threshold, int | float) else None,
        summary.get("encoder"),
        spec,
        int(counts["g"][0]),
        int(counts["n"][0]),
    )


def _summary(folder: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_page(folder: Path, page: int, per_page: int) -> GroupPage:
    """Groups number `(page - 1) × per_page + 1 …` in group-id order; only their rows are read.

    Raises:
        LookalikeError: the groups file is not a dedup run's.
    """
    scan = _scan(folder)
    ids = scan.select(pl.col("group_id").unique().sort())
    total = int(ids.select(pl.len()).collect().item())
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    wanted = ids.slice((page - 1) * per_page, per_page).collect()["group_id"].to_list()
    return GroupPage(page, pages, _grouped(scan, wanted))


def read_groups(folder: Path, group_ids: Sequence[int]) -> tuple[tuple[Member, ...], ...]:
    """The members of these groups, keeper first, in the order asked (empty for a group the run does not hold).

    Raises:
        LookalikeError: the groups file is not a dedup run's.
    """
    return _grouped(_scan(folder), group_ids) if group_ids else ()


def _grouped(scan: pl.LazyFrame, group_ids: Sequence[int]) -> tuple[tuple[Member, ...], ...]:
    rows = scan.filter(pl.col("group_id").is_in(list(group_ids))).select(MEMBER_FIELDS).collect()
    members: dict[int, list[Member]] = {g: [] for g in group_ids}
    for row in rows.iter_rows(named=True):
        members[row["group_id"]].append(Member(**row))
    return tuple(tuple(sorted(ms, key=lambda m: not m.keeper)) for ms in members.values())


def with_keeper(group: Sequence[Member], keeper: str, scores: KeeperScores) -> list[Member]:
    """The group with `keeper` as its keeper: every member's tier and score re-derived against it (the scores from
    the stored vectors; unchanged when the keeper is the suggested one).

    Raises:
        LookalikeError: `keeper` is not one of the group's files, or its content changed since ingest.
    """
    chosen = next((m for m in group if m.path == keeper), None)
    group_id = group[0].group_id if group else -1
    if chosen is None:
        raise LookalikeError(f"group {group_id}: {keeper!r} is not one of its files")
    if chosen.changed:
        raise LookalikeError(f"group {group_id}: {keeper!r} changed since ingest, so it cannot be the keeper")
    if chosen.keeper:
        return list(group)
    new_scores = scores(sorted({m.point_id for m in group}), chosen.point_id)
    return [
        replace(
            m,
            tier="keeper" if m is chosen else "exact" if m.point_id == chosen.point_id else "near",
            score=new_scores.get(m.point_id, math.nan),
        )
        for m in group
    ]


def chosen_members(folder: Path, choices: Sequence[KeeperChoice], scores: KeeperScores) -> list[Member]:
    """The members of the chosen groups with the chosen keepers.

    Raises:
        LookalikeError: a group the run does not hold, a group chosen twice, or a keeper that cannot be (see
            `with_keeper`).
    """
    ids = [c.group_id for c in choices]
    if len(set(ids)) != len(ids):
        raise LookalikeError("a group is listed twice: choose one keeper per group")
    groups = {g[0].group_id: g for g in _grouped(_scan(folder), ids) if g}
    if missing := [i for i in ids if i not in groups]:
        raise LookalikeError(f"no group {missing[0]} in this dedup run ({_groups_file(folder)})")
    return [m for c in choices for m in with_keeper(groups[c.group_id], c.keeper, scores)]


def plan(members: Sequence[Member], move_to: Path, threshold: float | None) -> MoveOutcome:
    """The moves of every non-keeper (`pipeline.dedup.moves.plan_moves`); nothing is touched."""
    return MoveOutcome(move_to, tuple(plan_moves(members, move_to, threshold)))


def apply(members: Sequence[Member], move_to: Path, threshold: float | None, key: SigningKey) -> MoveOutcome:
    """Make the planned moves (`pipeline.dedup.moves.apply_moves`: sha256 re-checked, signed manifest in
    `move_to` written before the first move and after the last)."""
    planned = plan_moves(members, move_to, threshold)
    manifest = _free_manifest(move_to)
    return MoveOutcome(move_to, tuple(apply_moves(planned, members, manifest, key)), manifest)


def _free_manifest(move_to: Path) -> Path:
    """A manifest name not taken yet: two applies in one second must not share (and overwrite) a manifest."""
    first = manifest_path(move_to)
    path, n = first, 1
    while os.path.lexists(path):
        n += 1
        path = first.with_name(f"{first.stem}-{n}{first.suffix}")
    return path


def member_json(member: Member, thumb: str) -> dict[str, Any]:
    """One file of a group as the API returns it; `exists`: the file is still at its path (not moved since)."""
    row = asdict(member)
    score = row["score"]
    row["score"] = None if isinstance(score, float) and math.isnan(score) else score
    return {**row, "keeper": member.keeper, "exists": os.path.lexists(member.path), "thumb": thumb}


def outcome_json(outcome: MoveOutcome) -> dict[str, Any]:
    """Moves as the API returns them, with counts, the manifest and the undo command of an apply."""
    return {
        "move_to": str(outcome.move_to),
        "counts": dict(Counter(m.status for m in outcome.moves)),
        "moves": [asdict(m) for m in outcome.moves],
        "manifest": str(outcome.manifest) if outcome.manifest else None,
        "undo": outcome.undo,
    }
