"""Killing `lookalike ingest` (the real command line, in its own process with 2 DataLoader workers) at several
points, with kill -9 and with SIGTERM: no process is left within 5 s, every acknowledged point is kept, SIGTERM exits
143 with one line, and a re-run completes the exact point set."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fakes import TinyEncoder, write_noise_images

from pipeline.core.config import IngestConfig
from pipeline.index.ingest import ingest
from pipeline.index.sources import list_source
from pipeline.store import VectorStore, point_id_for
from pipeline.store.edge import EdgeBackend

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("cli_child.py")
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
IMAGES = 48


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains `marker`, as `pgrep -f` finds them (forked workers share their parent's)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # gone meanwhile
    return found


def gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while processes_mentioning(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start(images: Path, store: Path) -> subprocess.Popen[str]:
    args = ["ingest", str(images), "-c", "c", "-e", "slow:0.15", "--store", str(store), "--workers", "2"]
    command = [sys.executable, str(CHILD), *args, "--batch-size", "4", "--no-progress"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def _acks_then_kill(child: subprocess.Popen[str], after: int, sig: signal.Signals, marker: str) -> set[str]:
    """Signal the ingest after `after` acknowledged points; the acked ids, once it has exited."""
    assert child.stdout is not None
    acked: set[str] = set()
    if after == 0:  # before any point is stored: as soon as the DataLoader workers exist
        deadline = time.monotonic() + 30
        while len(processes_mentioning(marker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        for line in child.stdout:
            acked.update(line.split()[1:] if line.startswith("acked") else ())
            if len(acked) >= after:
                break
    child.send_signal(sig)
    child.wait(timeout=30)
    return acked


def _stored(store: Path) -> set[str]:
    with VectorStore(EdgeBackend(store)) as vs:
        if "c" not in vs.list_collections():
            return set()
        return {pid for pid, vec, _ in vs.scroll("c", "tiny-thumb8") if vec is not None}


@pytest.mark.parametrize("after", [0, 4, 20])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killed_ingest_leaves_no_process_keeps_acked_points_and_reruns_exactly(
    tmp_path: Path, sig: signal.Signals, after: int
) -> None:
    write_noise_images(tmp_path / "imgs", IMAGES)
    store = tmp_path / "store"
    child = _start(tmp_path / "imgs", store)
    acked = _acks_then_kill(child, after, sig, str(store))
    assert gone_within(str(store), 5.0), "a worker outlived the killed ingest"
    rest, stderr = child.communicate(timeout=5)
    acked.update(pid for line in rest.splitlines() if line.startswith("acked") for pid in line.split()[1:])
    if sig == signal.SIGTERM:
        assert child.returncode == 143, stderr
        assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted:")
    else:
        assert child.returncode == -signal.SIGKILL
    assert len(acked) < IMAGES, "the ingest finished before the kill: the test did not test anything"
    assert acked <= _stored(store)  # every acknowledged point survived, with its vector
    with VectorStore(EdgeBackend(store)) as vs:  # the store is not locked: the re-run opens it at once
        config = IngestConfig("c", batch_size=8, workers=0, progress=False)
        ingest(list_source(tmp_path / "imgs"), TinyEncoder(), vs, config, torch.device("cpu"))
        assert vs.count("c") == IMAGES
    expected = {point_id_for(hashlib.sha256(p.read_bytes()).hexdigest()) for p in (tmp_path / "imgs").rglob("*.png")}
    assert _stored(store) == expected
