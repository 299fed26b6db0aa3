"""--move-to round trip: a dry run moves nothing, apply moves non-keepers, undo puts them back — and nothing a user
(or a crash) does in between can lose a file: every move and every undo re-checks content at the moment it acts."""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

import pipeline.core.files
import pipeline.dedup.moves
from pipeline.core.errors import LookalikeError
from pipeline.core.signing import SigningKey, signature_path
from pipeline.dedup.groups import Member
from pipeline.dedup.moves import Move, apply_moves, plan_moves, read_manifest, undo_moves, write_manifest


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return SigningKey.load(tmp_path / "key" / "manifest.key")


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


def _tree(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _apply(members: list[Member], tmp_path: Path, key: SigningKey) -> tuple[list[Move], Path]:
    manifest = tmp_path / "dups" / "manifest.csv"
    return apply_moves(plan_moves(members, tmp_path / "dups"), members, manifest, key), manifest


def test_dry_run_moves_nothing(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")
    planned = plan_moves(members, tmp_path / "dups")
    write_manifest(planned, tmp_path / "plan.csv", key)
    assert all(Path(m.path).is_file() for m in members)
    assert not (tmp_path / "dups").exists()
    assert [m.status for m in read_manifest(tmp_path / "plan.csv", key)] == ["planned"] * 3


def test_apply_then_undo_restores_every_file(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")
    Path(members[4].path).write_bytes(b"edited after ingest")  # must be left alone: content changed
    before = _tree(tmp_path / "photos")
    done, manifest = _apply(members, tmp_path, key)
    assert [m.status for m in done] == ["moved", "moved", "skipped"]
    assert done[2].reason.startswith("content changed since ingest")
    assert {Path(m.moved_to).relative_to(tmp_path / "dups").as_posix() for m in done[:2]} == {"a/dup.jpg", "b/dup.jpg"}
    assert Path(members[0].path).is_file() and not Path(members[1].path).exists()
    restored = undo_moves(manifest, key)
    assert [m.status for m in restored] == ["restored", "restored", "skipped"]
    assert _tree(tmp_path / "photos") == before
    assert pl.read_csv(manifest)["status"].to_list() == ["restored", "restored", "skipped"]
    assert pl.read_csv(manifest)["reason"].to_list()[2].startswith("content changed")  # undo keeps every reason
    assert [m.status for m in undo_moves(manifest, key)] == ["restored", "restored", "skipped"]  # a second undo: no-op


def test_a_replaced_keeper_keeps_its_duplicates_in_place(tmp_path: Path, key: SigningKey) -> None:
    """The campaign's lost picture: the keeper replaced by another image after ingest, its former copy moved out."""
    members = _members(tmp_path / "photos")
    Path(members[0].path).write_bytes(b"another picture altogether")
    done, _ = _apply(members, tmp_path, key)
    assert [(m.status, m.reason) for m in done[:2]] == [
        ("skipped", "its keeper's content changed since ingest (sha256 differs)")
    ] * 2
    assert Path(members[1].path).read_bytes() == b"one" and Path(members[2].path).is_file()
    assert done[2].status == "moved"  # group 2 is untouched, so its move goes ahead


def test_changed_files_are_planned_as_skipped(tmp_path: Path) -> None:
    members = _members(tmp_path / "photos")
    members[3] = replace(members[3], changed=True)  # group 2's keeper was edited (dedup marks it when hashing)
    members[1] = replace(members[1], changed=True)
    planned = plan_moves(members, tmp_path / "dups")
    assert [(m.status, m.reason.split(":")[0]) for m in planned] == [
        ("skipped", "content changed since ingest"),
        ("planned", ""),
        ("skipped", "its keeper's content changed since ingest"),
    ]


def test_undo_never_overwrites(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")[:3]
    _, manifest = _apply(members, tmp_path, key)
    Path(members[1].path).write_bytes(b"a new file took the name")
    result = undo_moves(manifest, key)
    assert [m.status for m in result] == ["failed", "restored"]
    assert Path(members[1].path).read_bytes() == b"a new file took the name"
    assert pl.read_csv(manifest)["reason"][0].startswith("undo failed: original path is taken")
    Path(members[1].path).unlink()
    assert [m.status for m in undo_moves(manifest, key)] == ["restored", "restored"]  # undo again finishes the job


def test_undo_refuses_a_moved_file_whose_content_changed(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")[:3]
    done, manifest = _apply(members, tmp_path, key)
    Path(done[0].moved_to).write_bytes(b"replaced in the moves folder")
    result = undo_moves(manifest, key)
    assert [m.status for m in result] == ["failed", "restored"]
    assert "content changed" in result[0].reason
    assert not Path(members[1].path).exists()  # not "restored" into the library
    assert Path(done[0].moved_to).read_bytes() == b"replaced in the moves folder"
    assert pl.read_csv(manifest)["status"].to_list() == ["moved", "restored"]  # a later undo may still try


@pytest.mark.parametrize("tamper", ["unsigned", "edited", "signed-by-another-key", "empty-signature"])
def test_undo_refuses_manifests_lookalike_did_not_write(tmp_path: Path, key: SigningKey, tamper: str) -> None:
    members = _members(tmp_path / "photos")[:3]
    done, manifest = _apply(members, tmp_path, key)
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_bytes(b"not a duplicate of anything")
    if tamper == "unsigned":
        signature_path(manifest).unlink()
    elif tamper == "edited":  # point a row at another file, with that file's real sha256
        sha = hashlib.sha256(victim.read_bytes()).hexdigest()
        text = manifest.read_text().replace(done[0].moved_to, str(victim)).replace(done[0].sha256, sha)
        manifest.write_text(text.replace(done[0].original, str(tmp_path / "photos" / "stolen.txt")))
    elif tamper == "signed-by-another-key":
        write_manifest(done, manifest, SigningKey.load(tmp_path / "other.key"))
    else:
        signature_path(manifest).write_text("")
    before = _tree(tmp_path)
    with pytest.raises(LookalikeError, match="refused: its signature"):
        undo_moves(manifest, key)
    assert _tree(tmp_path) == before


def test_an_interrupted_apply_leaves_a_manifest_undo_can_use(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C / SIGTERM during the second move: the manifest is rewritten with the first as moved."""
    members = _members(tmp_path / "photos")[:3]
    before = _tree(tmp_path / "photos")
    real, calls = pipeline.dedup.moves.verified_move, []

    def interrupted(src: Path, dst: Path, sha: str) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst, sha)

    monkeypatch.setattr(pipeline.dedup.moves, "verified_move", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _apply(members, tmp_path, key)
    manifest = tmp_path / "dups" / "manifest.csv"
    assert pl.read_csv(manifest)["status"].to_list() == ["moved", "planned"]
    monkeypatch.setattr(pipeline.dedup.moves, "verified_move", real)
    assert [m.status for m in undo_moves(manifest, key)] == ["restored", "skipped"]
    assert _tree(tmp_path / "photos") == before


def test_a_killed_apply_is_undone_by_content(tmp_path: Path, key: SigningKey) -> None:
    """kill -9 after a move but before the manifest's rewrite: every row still says planned."""
    members = _members(tmp_path / "photos")[:3]
    before = _tree(tmp_path / "photos")
    planned = plan_moves(members, tmp_path / "dups")
    manifest = write_manifest(planned, tmp_path / "dups" / "manifest.csv", key)  # what apply writes first
    pipeline.core.files.verified_move(Path(planned[0].original), Path(planned[0].moved_to), planned[0].sha256)
    result = undo_moves(manifest, key)
    assert [(m.status, m.reason) for m in result] == [
        ("restored", ""),
        ("skipped", "never moved (the apply stopped before it)"),
    ]
    assert _tree(tmp_path / "photos") == before


def test_missing_keeper_blocks_the_move(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")
    Path(members[3].path).unlink()
    done, _ = _apply(members, tmp_path, key)
    assert done[-1].status == "skipped" and done[-1].reason == "its keeper no longer exists"


def test_an_existing_destination_is_never_replaced(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")[:2]
    planned = plan_moves(members, tmp_path / "dups")
    Path(planned[0].moved_to).parent.mkdir(parents=True)
    Path(planned[0].moved_to).write_bytes(b"already here")
    done = apply_moves(planned, members, tmp_path / "m.csv", key)
    assert (done[0].status, done[0].reason) == ("skipped", "destination exists")
    assert Path(planned[0].moved_to).read_bytes() == b"already here" and Path(members[1].path).is_file()


def test_moves_across_filesystems_copy_verify_then_unlink(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    members = _members(tmp_path / "photos")[:3]
    before = _tree(tmp_path / "photos")
    done, manifest = _apply(members, tmp_path, key)
    assert [m.status for m in done] == ["moved", "moved"]
    assert Path(done[0].moved_to).read_bytes() == b"one" and not Path(members[1].path).exists()
    assert not list((tmp_path / "dups").rglob("*partial*"))
    assert [m.status for m in undo_moves(manifest, key)] == ["restored", "restored"]
    assert _tree(tmp_path / "photos") == before


def test_a_filesystem_error_fails_the_row_and_keeps_the_file(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    members = _members(tmp_path / "photos")[:2]
    planned = plan_moves(members, tmp_path / "dups")
    monkeypatch.setattr(os, "link", disk_full)
    done = apply_moves(planned, members, tmp_path / "m.csv", key)
    assert (done[0].status, done[0].reason) == ("failed", "No space left on device")
    assert Path(members[1].path).read_bytes() == b"one"


def test_members_only_chained_to_the_keeper_are_not_moved(tmp_path: Path, key: SigningKey) -> None:
    members = _members(tmp_path / "photos")
    members[2] = Member(1, "p1", members[2].path, "near", 0.7, 10, 10, 7, members[2].sha256)
    planned = plan_moves(members, tmp_path / "dups", threshold=0.9)
    assert [(m.status, m.reason.split(":")[0]) for m in planned] == [
        ("planned", ""),
        ("skipped", "chained"),
        ("planned", ""),
    ]
    done = apply_moves(planned, members, tmp_path / "m.csv", key)
    assert [m.status for m in done] == ["moved", "skipped", "moved"] and Path(members[2].path).is_file()


def test_signing_key_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "k" / "manifest.key"
    first = SigningKey.load(path)
    assert SigningKey.load(path).secret == first.secret and len(first.secret) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_bytes(b"short")
    with pytest.raises(LookalikeError, match="not a lookalike signing key"):
        SigningKey.load(path)
