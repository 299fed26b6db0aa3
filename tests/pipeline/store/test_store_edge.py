"""The embedded engine's own guarantees: one process at a time, nothing acknowledged lost to kill -9, merges safe to
interrupt, leftovers of killed work cleaned, engine errors as one line, HNSW once large enough."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
import torch
from fakes import GreyEncoder, TinyEncoder, write_noise_images

from pipeline.core.config import IngestConfig, StoreConfig
from pipeline.core.errors import StoreError
from pipeline.index.ingest import ingest, ingest_all
from pipeline.index.sources import list_source
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for
from pipeline.store.edge import EdgeBackend
from pipeline.store.lock import StoreLock

ROOT = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("ingest_child.py")
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
CPU = torch.device("cpu")
KILL_AFTER = int(os.environ.get("LOOKALIKE_KILL_AFTER", "12"))  # acked points before the kill (store_crash_trials.sh)


def _expected_ids(folder: Path) -> set[str]:
    return {point_id_for(hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.rglob("*.png")}


def _stored_ids(store_dir: Path) -> set[str]:
    with _reopen(store_dir) as store:
        return {pid for pid, vec, _ in store.scroll("c", "tiny-thumb8") if vec is not None}


def _reopen(store_dir: Path, within_s: float = 10.0) -> VectorStore:
    """Open the store, retrying briefly: a killed process's workers take a moment to be reaped."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return VectorStore(EdgeBackend(store_dir))
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _processes_gone(marker: str, within_s: float = 1.5) -> bool:
    """No process whose command line mentions `marker` (forked workers share their parent's) within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker in cmdline.read_bytes().decode(errors="replace"):
                    alive.append(cmdline)
            except OSError:
                continue  # gone meanwhile
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _start_child(images: Path, store_dir: Path, delay: float | str, workers: int) -> subprocess.Popen[str]:
    command = [sys.executable, str(CHILD), str(images), str(store_dir), str(delay), str(workers)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def _read_acks(child: subprocess.Popen[str], at_least: int) -> set[str]:
    assert child.stdout is not None
    acked: set[str] = set()
    for line in child.stdout:
        if line.startswith("acked"):
            acked.update(line.split()[1:])
        if len(acked) >= at_least or line.startswith("done"):
            break
    return acked


def test_kill_9_during_ingest_keeps_every_acknowledged_point_and_a_rerun_completes_the_set(tmp_path: Path) -> None:
    """Regression: a killed ingest must leave no orphaned worker holding the store, and lose nothing it acked."""
    write_noise_images(tmp_path / "imgs", 40)
    store_dir = tmp_path / "store"
    child = _start_child(tmp_path / "imgs", store_dir, delay=0.3, workers=2)
    acked = _read_acks(child, at_least=KILL_AFTER)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _processes_gone(str(store_dir))  # its DataLoader workers died with it (not 5 s later, at torch's check)
    assert KILL_AFTER <= len(acked) < 40
    assert acked <= _stored_ids(store_dir)  # every acknowledged point survived, with its vector
    with _reopen(store_dir) as store:
        ingest(list_source(tmp_path / "imgs"), TinyEncoder(), store, IngestConfig("c", 8, 0, progress=False), CPU)
        assert store.count("c") == 40  # no duplicates
    assert _stored_ids(store_dir) == _expected_ids(tmp_path / "imgs")


def test_a_second_process_is_refused_in_one_line_and_the_first_writer_completes(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 24)
    write_noise_images(tmp_path / "other", 4, seed=9)
    store_dir = tmp_path / "store"
    release = tmp_path / "release"
    child = _start_child(tmp_path / "imgs", store_dir, delay=f"wait:{release}", workers=2)
    _read_acks(child, at_least=4)  # the first batch is stored; the others wait for `release`
    options = ["-c", "c", "-e", "phash:8", "--store", str(store_dir), "--workers", "0", "--no-progress"]
    second = subprocess.run(
        [sys.executable, "cli.py", "ingest", str(tmp_path / "other"), *options],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    assert second.returncode == 2
    [line] = second.stderr.strip().splitlines()
    assert "in use by another lookalike process" in line and "--qdrant-url" in line and "docker compose up -d" in line
    release.touch()
    assert child.stdout is not None
    assert child.stdout.read().strip().endswith("done") and child.wait() == 0
    assert _stored_ids(store_dir) == _expected_ids(tmp_path / "imgs")


def test_a_crash_between_the_steps_of_a_merge_is_repaired_by_the_next_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine has no batch update: a merge is several writes. Dying after the payload and before the vectors
    must leave the point 'not done' for that encoder, so the next run writes it."""
    write_noise_images(tmp_path / "imgs", 6)
    listing = list_source(tmp_path / "imgs")
    config = IngestConfig("c", batch_size=6, workers=0, progress=False)
    encoders = (TinyEncoder(dark_below=2.0), GreyEncoder())  # tiny finds "no face" everywhere at first
    with VectorStore(EdgeBackend(tmp_path / "store")) as store:
        ingest_all(listing, encoders, store, config, CPU)
    retry = IngestConfig("c", batch_size=6, workers=0, progress=False, retry_missing=True)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed between payload and vectors")

    with VectorStore(EdgeBackend(tmp_path / "store")) as store:
        monkeypatch.setattr(qe.UpdateOperation, "update_vectors", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest(listing, TinyEncoder(), store, retry, CPU)
        monkeypatch.undo()
        assert store.present_ids("c", list(_expected_ids(tmp_path / "imgs")), "tiny-thumb8") == set()
    with VectorStore(EdgeBackend(tmp_path / "store")) as store:
        summary = ingest(listing, TinyEncoder(), store, config, CPU)
        assert summary.ingested == 6
        for _, vec, payload in store.scroll("c", "tiny-thumb8"):
            assert vec is not None and payload["missing_vectors"] == []
        assert all(vec is not None for _, vec, _ in store.scroll("c", "grey-4"))  # the other encoder's kept


def test_leftovers_of_a_killed_optimize_are_removed_before_the_shard_opens(tmp_path: Path) -> None:
    spec = VectorSpec("v", 3, "cosine")
    with VectorStore(EdgeBackend(tmp_path / "s")) as store:
        store.ensure_collection("c", [spec])
        store.upsert("c", [Point(point_id_for("a"), {"v": np.array([1, 0, 0], np.float32)})])
    builder = tmp_path / "s" / "collections" / "c" / "shard" / "temp_segments" / "segment_builder_x"
    builder.mkdir(parents=True)
    (builder / "junk").write_bytes(b"0" * 1000)
    with VectorStore(EdgeBackend(tmp_path / "s")) as store:
        assert store.count("c") == 1
    assert not builder.exists()


def test_a_create_that_died_before_its_catalog_is_no_collection(tmp_path: Path) -> None:
    (tmp_path / "s" / "collections" / "c" / "shard").mkdir(parents=True)
    with VectorStore(EdgeBackend(tmp_path / "s")) as store:
        assert store.list_collections() == [] and not store.has_collection("c")
        store.ensure_collection("c", [VectorSpec("v", 3, "cosine")])
        assert store.list_collections() == ["c"]


def test_engine_errors_are_one_line_store_errors(tmp_path: Path) -> None:
    with VectorStore(EdgeBackend(tmp_path / "s")) as store:
        store.ensure_collection("c", [VectorSpec("v", 3, "cosine")])
        with pytest.raises(StoreError, match=r"write to collection 'c' failed: .*dim") as caught:
            store.upsert("c", [Point(point_id_for("a"), {"v": np.ones(4, np.float32)})])
        assert "\n" not in str(caught.value)
        with pytest.raises(StoreError, match="no collection 'missing'"):
            store.count("missing")


def test_the_lock_is_refused_while_held_released_on_close_and_not_kept_by_a_forked_child(tmp_path: Path) -> None:
    store = VectorStore(EdgeBackend(tmp_path / "s"))
    with pytest.raises(StoreError, match=rf"in use by another lookalike process \(pid {os.getpid()}\)"):
        StoreLock(tmp_path / "s")
    child = os.fork()
    if child == 0:  # a forked child (a DataLoader worker) that outlives the store's owner
        time.sleep(3)
        os._exit(0)
    try:
        store.close()
        StoreLock(tmp_path / "s").release()  # free at once, though the child still has the fd it inherited
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_large_collection_gets_hnsw_and_answers_like_an_exact_scan(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    spec = VectorSpec("v", 16, "cosine")
    with VectorStore(EdgeBackend(tmp_path / "s", index_min_points=200)) as store:
        store.ensure_collection("c", [spec])
        store.upsert("c", [Point(point_id_for(str(i)), {"v": v}) for i, v in enumerate(x)])
        assert store.info("c").indexed_vectors == 0
        assert store.build_index("c")
        assert store.info("c").indexed_vectors == 300
        approx = store.query("c", spec, x[:20], 5)
        exact = store.query("c", spec, x[:20], 5, exact=True)
    agree = np.mean([[h.point_id for h in a] == [h.point_id for h in b] for a, b in zip(approx, exact, strict=True)])
    assert agree >= 0.95


def test_a_store_folder_of_an_earlier_version_is_refused_with_the_migrate_command(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    old = QdrantClient(path=str(tmp_path / "old"))
    old.create_collection("faces", vectors_config={"v": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    old.close()
    with pytest.raises(StoreError, match=r"faces\); move them .* lookalike store migrate --store .*old"):
        VectorStore.open(StoreConfig(path=str(tmp_path / "old")))
    StoreLock(tmp_path / "old").release()  # the refusal let go of the folder
