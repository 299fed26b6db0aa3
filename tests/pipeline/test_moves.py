"""--move-to round trip: a dry run moves nothing, apply moves non-keepers, undo puts them back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from pipeline.dedup_groups import Member
from pipeline.moves import apply_moves, plan_moves, read_manifest, undo_moves, write_manifest


def _member(group: int, path: Path, tier: str, content: bytes) -> Member:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    return Member(group, f"p{group}", str(path), tier, 1.0, 10, 10, len(content), sha)  # type: ignore[arg-type]


def _members(root: Path) -> list[Member]:
    return [
        _member(1, root / "a" / "keep.jpg", "keeper", b"one"),
        _member(1, root / "a" / "dup.jpg", "exact", b"one"),
        _member(1, root / "b" / "dup.jpg", "near", b"one-ish"),  # same name in another folder: must not clash
        _member(2, root / "c" / "keep.png", "keeper", b"two"),
        _member(2, root / "c" / "changed.png", "near", b"two-ish"),
    ]


def test_dry_run_moves_nothing(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    planned = plan_moves(members, tmp_path / "dups")
    write_manifest(planned, tmp_path / "plan.csv")
    assert all(Path(m.path).is_file() for m in members)
    assert not (tmp_path / "dups").exists()
    assert [m.status for m in read_manifest(tmp_path / "plan.csv")] == ["planned"] * 3


def test_apply_then_undo_restores_every_file(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    before = {p: p.read_bytes() for p in (tmp_path / "photos").rglob("*") if p.is_file()}
    Path(members[4].path).write_bytes(b"edited after ingest")  # must be left alone: content changed
    before[Path(members[4].path)] = b"edited after ingest"
    done = apply_moves(plan_moves(members, tmp_path / "dups"), members)
    manifest = write_manifest(done, tmp_path / "dups" / "manifest.csv")
    assert [m.status for m in done] == ["moved", "moved", "skipped"]
    assert done[2].reason == "content changed since ingest"
    assert {Path(m.moved_to).relative_to(tmp_path / "dups").as_posix() for m in done[:2]} == {"a/dup.jpg", "b/dup.jpg"}
    assert Path(members[0].path).is_file() and not Path(members[1].path).exists()
    restored = undo_moves(manifest)
    assert [m.status for m in restored] == ["restored", "restored", "skipped"]
    after = {p: p.read_bytes() for p in (tmp_path / "photos").rglob("*") if p.is_file()}
    assert after == before
    assert pl.read_csv(manifest)["status"].to_list() == ["restored", "restored", "skipped"]
    assert [m.status for m in undo_moves(manifest)] == ["restored", "restored", "skipped"]  # a second undo: no-op


def test_undo_never_overwrites(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    done = apply_moves(plan_moves(members[:3], tmp_path / "dups"), members[:3])
    manifest = write_manifest(done, tmp_path / "m.csv")
    Path(members[1].path).write_bytes(b"a new file took the name")
    result = undo_moves(manifest)
    assert [m.status for m in result] == ["failed", "restored"]
    assert Path(members[1].path).read_bytes() == b"a new file took the name"
    Path(members[1].path).unlink()
    assert [m.status for m in undo_moves(manifest)] == ["restored", "restored"]  # undo again finishes the job


def test_missing_keeper_blocks_the_move(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    Path(members[3].path).unlink()
    done = apply_moves(plan_moves(members, tmp_path / "dups"), members)
    assert done[-1].status == "skipped" and done[-1].reason == "its keeper no longer exists"


def test_members_only_chained_to_the_keeper_are_not_moved(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    members[2] = Member(1, "p1", members[2].path, "near", 0.7, 10, 10, 7, members[2].sha256)
    planned = plan_moves(members, tmp_path / "dups", threshold=0.9)
    assert [(m.status, m.reason.split(":")[0]) for m in planned] == [
        ("planned", ""),
        ("skipped", "chained"),
        ("planned", ""),
    ]
    done = apply_moves(planned, members)
    assert [m.status for m in done] == ["moved", "skipped", "moved"] and Path(members[2].path).is_file()
