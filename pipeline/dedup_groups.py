"""Duplicate groups from a thresholded k-NN graph: connected components, the suggested keeper, every file's
score to it, and the pairs that joined them. Pure: no store, no torch; scores come through a function."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.knn import Edges

Tier = Literal["keeper", "exact", "near"]


@dataclass(frozen=True)
class PointTable:
    """Every point of a collection, in scroll order (row i is point ids[i]).

    Attributes:
        vectors: (N, D) float32 with zero rows where `has_vector` is False; None when not loaded.
        has_vector: (N,) bool.
        width, height: (N,) int64 pixel size from the payload, 0 when unknown.
        duplicate_paths: per row, the other files ingest found with the point's bytes (payload `duplicate_paths`);
            empty when not loaded.
    """

    ids: tuple[str, ...]
    paths: tuple[str, ...]
    sha256: tuple[str, ...]
    width: np.ndarray
    height: np.ndarray
    has_vector: np.ndarray
    vectors: np.ndarray | None = None
    duplicate_paths: tuple[tuple[str, ...], ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Member:
    """One file of a duplicate group; `score` is its point's similarity to the keeper's point."""

    group_id: int
    point_id: str
    path: str
    tier: Tier  # keeper · exact (same bytes as the keeper) · near
    score: float
    width: int
    height: int
    bytes: int
    sha256: str

    @property
    def keeper(self) -> bool:
        return self.tier == "keeper"


@dataclass(frozen=True)
class DupPair:
    """A kept edge: two points at or above the threshold (near), or a file and its stored twin (exact)."""

    group_id: int
    left_id: str
    left_path: str
    right_id: str
    right_path: str
    score: float
    tier: Literal["exact", "near"]


def connected_groups(n: int, edges: Edges, also: Iterable[int] = ()) -> list[np.ndarray]:
    """Connected components of `edges` over rows 0..n-1 with ≥ 2 rows, plus singleton rows listed in `also`.

    Returns:
        Each group's rows ascending; groups ordered by size (largest first), then by their first row.
    """
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges.left, edges.right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=1) if n else np.zeros(0, dtype=np.int64)
    wanted = sizes[labels] >= 2  # (N,)
    wanted[list(also)] = True
    rows = np.flatnonzero(wanted)
    order = np.lexsort((rows, labels[rows]))
    rows, lab = rows[order], labels[rows[order]]
    groups = np.split(rows, np.flatnonzero(np.diff(lab)) + 1) if rows.size else []
    return sorted(groups, key=lambda g: (-g.size, int(g[0])))


def keeper_rank(pixels: int, size: int, primary: bool, path: str) -> tuple[int, int, int, str]:
    """Sort key whose minimum is the suggested keeper: most pixels, then largest file, then the stored path
    (not one of the point's other byte-identical files), then the first path alphabetically."""
    return (-pixels, -size, 0 if primary else 1, path)


@dataclass(frozen=True)
class _File:
    row: int
    path: str
    primary: bool  # the point's stored path, not one of its other byte-identical files
    bytes: int  # -1 when the file is gone


def _file_bytes(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _group_files(rows: np.ndarray, table: PointTable, copies: Mapping[int, list[str]]) -> list[_File]:
    return [
        _File(int(r), path, primary, _file_bytes(path))
        for r in rows
        for path, primary in [(table.paths[r], True), *((p, False) for p in copies.get(int(r), ()))]
    ]


ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (M,) rows, (M,) rows → (M,) similarity, NaN if unknown


def assemble_groups(
    table: PointTable, groups: list[np.ndarray], copies: Mapping[int, list[str]], score: ScoreFn
) -> tuple[list[Member], int]:
    """Files of each group with the suggested keeper and every file's score to it.

    Files that no longer exist are dropped (and counted); a group left with fewer than two files is dropped.

    Returns:
        Members group by group (keeper first, then by descending score), and the number of missing files.
    """
    kept: list[tuple[list[_File], _File]] = []
    missing = 0
    for rows in groups:
        files = _group_files(rows, table, copies)
        existing = [f for f in files if f.bytes >= 0]
        missing += len(files) - len(existing)
        if len(existing) >= 2:
            pixels = {f.row: int(table.width[f.row] * table.height[f.row]) for f in existing}
            keeper = min(existing, key=lambda f: keeper_rank(pixels[f.row], f.bytes, f.primary, f.path))
            kept.append((existing, keeper))
    a = np.array([f.row for files, _ in kept for f in files], dtype=np.int64)
    b = np.array([k.row for files, k in kept for _ in files], dtype=np.int64)
    scores = iter(score(a, b).tolist()) if a.size else iter(())
    members: list[Member] = []
    for group_id, (files, keeper) in enumerate(kept, start=1):
        group = [_member(group_id, f, keeper, next(scores), table) for f in files]
        members += sorted(group, key=lambda m: (not m.keeper, -np.nan_to_num(m.score, nan=-np.inf), m.path))
    return members, missing


def _member(group_id: int, f: _File, keeper: _File, score: float, table: PointTable) -> Member:
    tier: Tier = "keeper" if f is keeper else "exact" if f.row == keeper.row else "near"
    r = f.row
    return Member(
        group_id, table.ids[r], f.path, tier, score, int(table.width[r]), int(table.height[r]), f.bytes, table.sha256[r]
    )


def group_pairs(members: list[Member], edges: Edges, table: PointTable, score: ScoreFn) -> list[DupPair]:
    """Near edges inside the groups, and each exact copy paired with the first listed file of its point."""
    row_of = {pid: i for i, pid in enumerate(table.ids)}
    group_of = {row_of[m.point_id]: m.group_id for m in members}
    pairs = [
        DupPair(group_of[lt], table.ids[lt], table.paths[lt], table.ids[rt], table.paths[rt], s, "near")
        for lt, rt, s in zip(edges.left.tolist(), edges.right.tolist(), edges.score.tolist(), strict=True)
        if lt in group_of
    ]
    first: dict[str, Member] = {}
    twins: list[tuple[Member, Member]] = []
    for m in members:
        if (f := first.setdefault(m.point_id, m)) is not m:
            twins.append((f, m))
    rows = np.array([row_of[m.point_id] for _, m in twins], dtype=np.int64)
    self_scores = score(rows, rows).tolist() if rows.size else []
    pairs += [
        DupPair(m.group_id, f.point_id, f.path, m.point_id, m.path, s, "exact")
        for (f, m), s in zip(twins, self_scores, strict=True)
    ]
    return sorted(pairs, key=lambda p: (p.group_id, p.tier != "exact", -p.score))
