"""A full disk ends in one line and loses nothing: the embedded engine maps its files into memory, so a write that
finds the disk full would kill the process with SIGBUS (measured: exit 135 on a full tmpfs). lookalike refuses to
write below LOOKALIKE_MIN_FREE_MB instead; what was acknowledged is kept and a re-run, once there is room, completes
the exact set."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import write_noise_images
from typer.testing import CliRunner

import pipeline.store.edge
from cli import app
from pipeline.store import VectorStore, point_id_for
from pipeline.store.edge import EdgeBackend

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
Usage = namedtuple("Usage", "total used free")


def _ingest(images: Path, store: Path) -> subprocess.CompletedProcess[str]:
    args = ["ingest", str(images), "-c", "c", "-e", "phash", "--store", str(store), "--workers", "0", "--no-progress"]
    env = {**os.environ, "LOOKALIKE_MIN_FREE_MB": "70"}
    command = [sys.executable, "cli.py", *args, "--batch-size", "64"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def _expected(folder: Path) -> set[str]:
    return {point_id_for(hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.rglob("*.png")}


def _stored(store: Path) -> set[str]:
    with VectorStore(EdgeBackend(store, min_free_bytes=0)) as vs:
        return {pid for pid, vec, _ in vs.scroll("c", "phash-8") if vec is not None}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 160 MiB filesystem (tmpfs), where mounting is allowed (root in a container); skipped elsewhere."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_filling_disk_stops_the_ingest_in_one_line_and_a_rerun_completes(tiny_disk: Path, tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 3000, size=(16, 16))
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 80 * 2**20)  # 80 MiB left; the store needs ~13 MiB, the guard keeps 70 free
    first = _ingest(tmp_path / "imgs", tiny_disk / "store")
    assert first.returncode == 2, first.stderr  # not 135 (SIGBUS)
    [line] = first.stderr.strip().splitlines()
    assert line.startswith("error: cannot ") and "MiB free" in line and "LOOKALIKE_MIN_FREE_MB" in line
    ballast.unlink()  # before reopening: opening a shard allocates its 64 MiB write-ahead log
    kept = _stored(tiny_disk / "store")
    assert 0 < len(kept) < 3000  # stopped part-way, keeping what it wrote
    second = _ingest(tmp_path / "imgs", tiny_disk / "store")
    assert second.returncode == 0, second.stderr
    assert _stored(tiny_disk / "store") == _expected(tmp_path / "imgs")


def test_low_free_space_refuses_writes_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same guard without a small disk: free space reported as 10 MiB after the first writes."""
    write_noise_images(tmp_path / "imgs", 40)
    store = ["--store", str(tmp_path / "store")]
    args = ["ingest", str(tmp_path / "imgs"), "-c", "c", "-e", "phash", "--workers", "0", "--batch-size", "8"]
    real, calls = shutil.disk_usage, []

    def filling(path: object) -> Usage:
        calls.append(path)
        total, used, free = real(path)  # type: ignore[arg-type]
        return Usage(total, used, free if len(calls) < 6 else 10 * 2**20)

    monkeypatch.setattr(pipeline.store.edge.shutil, "disk_usage", filling)
    result = runner.invoke(app, [*args, "--no-progress", *store])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("error: cannot write to collection 'c': 10 MiB free")
    monkeypatch.undo()
    kept = _stored(tmp_path / "store")
    assert 0 < len(kept) < 40
    assert runner.invoke(app, [*args, "--no-progress", *store]).exit_code == 0
    assert _stored(tmp_path / "store") == _expected(tmp_path / "imgs")
