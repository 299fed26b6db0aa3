"""Duplicate groups from a thresholded k-NN graph: connected components, the suggested keeper, every file's
score to it, and the pairs that joined them. No store, no torch: scores and content checks come through functions."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.core.files import has_content
from pipeline.search.knn import Edges

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
    """One file of a duplicate group; `score` is its point's similarity to the keeper's point; `changed`: the file's
    bytes no longer hash to the point's sha256 (edited or replaced since ingest), so it is never moved or kept."""

    group_id: int
    point_id: str
    path: str
    tier: Tier  # keeper · exact (same bytes as the keeper) · near
    score: float
    width: int
    height: int
    bytes: int
    sha256: str
    changed: bool = False

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


def groups_reproduced(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> int:
    """How many of the `reference` groups (arrays of rows) appear in `candidate` with exactly the same rows."""
    found = {tuple(np.sort(g).tolist()) for g in candidate}
    return sum(tuple(np.sort(g).tolist()) in found for g in reference)


def keeper_rank(
    pixels: int, size: int, primary: bool, path: str, changed: bool = False
) -> tuple[int, int, int, int, str]:
    """Sort key whose minimum is the suggested keeper: a file whose content is as ingested (never a changed one,
    whatever its size), then most pixels, then largest file, then the stored path (not one of the point's other
    byte-identical files), then the first path alphabetically."""
    return (int(changed), -pixels, -size, 0 if primary else 1, path)


@dataclass(frozen=True)
class _File:
    row: int
    path: str
    primary: bool  # the point's stored path, not one of its other byte-identical files
    bytes: int  # -1 when the file is gone
    changed: bool = False  # its bytes no longer hash to the point's sha256


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
ContentCheck = Callable[[Sequence[tuple[str, str]]], list[bool]]  # (path, sha256) pairs → each file still has it


def files_unchanged(files: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (path, sha256): does the file still hash to it? Unknown sha256 ("", old collections) counts as
    unchanged. Reads every byte of every file once, 8 files at a time (hashing releases the GIL)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda f: not f[1] or has_content(f[0], f[1]), files))


def _mark_changed(groups: list[list[_File]], table: PointTable, check: ContentCheck) -> list[list[_File]]:
    flat = [(f.path, table.sha256[f.row]) for files in groups for f in files]
    unchanged = iter(check(flat))
    return [[replace(f, changed=not next(unchanged)) for f in files] for files in groups]


def assemble_groups(
    table: PointTable,
    groups: list[np.ndarray],
    copies: Mapping[int, list[str]],
    score: ScoreFn,
    check: ContentCheck = files_unchanged,
) -> tuple[list[Member], int]:
    """Files of each group with the suggested keeper and every file's score to it.

    Files that no longer exist are dropped (and counted); a group left with fewer than two files is dropped. Every
    remaining file's content is checked (`check`), so a file edited since ingest is marked and never kept.

    Returns:
        Members group by group (keeper first, then by descending score), and the number of missing files.
    """
    found = [_group_files(rows, table, copies) for rows in groups]
    existing = [[f for f in files if f.bytes >= 0] for files in found]
    missing = sum(len(f) for f in found) - sum(len(f) for f in existing)
    kept: list[tuple[list[_File], _File]] = []
    for files in _mark_changed([files for files in existing if len(files) >= 2], table, check):
        pixels = {f.row: int(table.width[f.row] * table.height[f.row]) for f in files}
        keeper = min(files, key=lambda f: keeper_rank(pixels[f.row], f.bytes, f.primary, f.path, f.changed))
        kept.append((files, keeper))
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
    width, height = int(table.width[r]), int(table.height[r])
    return Member(group_id, table.ids[r], f.path, tier, score, width, height, f.bytes, table.sha256[r], f.changed)


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
