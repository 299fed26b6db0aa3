"""Ingest on Ray (issue 20), on a local Ray of 2 CPUs shared by the whole session: the same points, payloads, summary
and report as the single-process ingest; resume checked before decoding; a corrupt file reported; an encode actor
killed mid-run, and a run stopped by it then run again, lose and duplicate nothing.

Skipped when Ray is not installed (`pip install 'lookalike[ray]'`). The encoders the actors build are defined here
(pickled by reference), so the Ray workers get this folder and `tests/` on their PYTHONPATH.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fakes import TinyEncoder, write_noise_images
from PIL import Image
from stores import open_test_store

from pipeline.core.config import IngestConfig
from pipeline.core.errors import LookalikeError
from pipeline.core.records import EncodedBatch, IngestSummary
from pipeline.encoders import EncoderOptions, create_encoder
from pipeline.index import distributed
from pipeline.index.distributed import RemoteEncoder, ingest_ray
from pipeline.index.ingest import ingest_all
from pipeline.index.ray_session import RayConfig
from pipeline.index.sources import list_source
from pipeline.store import VectorStore

ROOT = Path(__file__).resolve().parents[3]
CPU = torch.device("cpu")
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'lookalike[ray]'"
)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own settings, not ours


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """One local Ray (2 CPUs) for every Ray test of the session; started here unless a test file did already."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        path = os.pathsep.join(str(p) for p in (ROOT, ROOT / "tests", Path(__file__).parent))
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            logging_level="ERROR",
        )
    yield ray
    if started:
        ray.shutdown()


# -- encoders the actors build (module level: pickled by reference) ------------------------------------------------


def tiny(device: torch.device) -> TinyEncoder:
    return TinyEncoder()


class DecodeLogEncoder(TinyEncoder):
    """TinyEncoder whose `prepare` (a decode task) appends a line to `log`: how many files were decoded."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def prepare(self, image: Image.Image) -> np.ndarray:
        with open(self.log, "a") as fh:
            fh.write("decoded\n")
        return super().prepare(image)


def die_once(marker: Path) -> None:
    """End this process (`os._exit`, as a kill -9 or the OOM killer would) unless `marker` exists; leave it first, so
    that the process that takes over goes on."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(1)


class CrashOnceEncoder(TinyEncoder):
    """TinyEncoder whose process dies (`os._exit`, as a kill -9 or the OOM killer would end it) on its `crash_on`-th
    `encode` call, once per test: the first actor to get there leaves `marker`, so a restarted actor goes on."""

    def __init__(self, marker: Path, crash_on: int) -> None:
        super().__init__()
        self.marker = marker
        self.crash_on = crash_on
        self.encodes = 0

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        self.encodes += 1
        if self.encodes == self.crash_on:
            die_once(self.marker)
        return super().encode(items)


def crash_once(marker: Path, crash_on: int, device: torch.device) -> CrashOnceEncoder:
    return CrashOnceEncoder(marker, crash_on)


class ModelFreeEncoder(TinyEncoder):
    """TinyEncoder that declares no model, as phash does: a Ray ingest encodes it in the decode tasks. Its process
    dies (`os._exit`) in its `crash_on`-th `prepare` when given a `marker`, once per test, as CrashOnceEncoder."""

    model_free = True

    def __init__(self, marker: Path | None = None, crash_on: int = 0) -> None:
        super().__init__()
        self.marker = marker
        self.crash_on = crash_on
        self.prepared = 0

    def prepare(self, image: Image.Image) -> np.ndarray:
        self.prepared += 1
        if self.marker is not None and self.prepared == self.crash_on:
            die_once(self.marker)
        return super().prepare(image)


class BatchMeanEncoder(TinyEncoder):
    """TinyEncoder whose vectors depend on the other items of their batch (the batch mean is taken off): a Ray
    ingest gives the single-process vectors only if it batches the files as the single-process ingest does."""

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        raw = np.stack(list(items)).astype(np.float32)
        centred = raw - raw.mean(axis=0) + 0.5
        return super().encode(list(centred))


class ModelFreeBatchMeanEncoder(BatchMeanEncoder):
    model_free = True


def batch_mean(device: torch.device) -> BatchMeanEncoder:
    return BatchMeanEncoder()


def no_actor_pool(*args: object) -> None:
    raise AssertionError("an encode actor pool was started for an encoder with no model")


# -- helpers ---------------------------------------------------------------------------------------------------------


def _config(report: Path, batch_size: int = 4) -> IngestConfig:
    return IngestConfig("c", batch_size=batch_size, workers=0, report_path=report, progress=False)


def _points(store: VectorStore, vector: str | None = None) -> dict[str, tuple[Any, dict[str, Any]]]:
    return {pid: (None if v is None else v.tolist(), p) for pid, v, p in store.scroll("c", vector)}  # type: ignore[arg-type]


def _counts(s: IngestSummary) -> tuple[int, ...]:
    return (s.seen, s.ingested, s.already_present, s.duplicate_content, s.no_face, s.failed, s.skipped)


def _single(
    root: Path, tmp_path: Path, encoders: Sequence[Any], kind: str = "edge"
) -> tuple[VectorStore, tuple[IngestSummary, ...]]:
    """The single-process ingest to compare with (DataLoader workers are not forked beside Ray's threads)."""
    store = open_test_store(kind, tmp_path / "single")
    return store, ingest_all(list_source(root), encoders, store, _config(tmp_path / "single.csv"), CPU)


# -- tests -----------------------------------------------------------------------------------------------------------


@needs_ray
def test_ray_ingest_gives_the_points_summary_and_report_of_a_single_process_one(
    local_ray: Any, mixed_image_folder: Any, tmp_path: Path
) -> None:
    # Two encoders (a tiny one with a pool of actors; phash, encoded in the decode tasks), several rounds (the
    # actors serve them all), a duplicate, 4 corrupt or unreadable files, a skipped one: what the single-process
    # ingest decides must come out.
    root = mixed_image_folder.root
    phash = functools.partial(create_encoder, "phash")
    single, expected = _single(root, tmp_path, [TinyEncoder(), phash(CPU)])
    store = open_test_store("edge", tmp_path / "ray")
    encoders = [RemoteEncoder(TinyEncoder(), tiny), RemoteEncoder.from_factory(phash)]
    config = RayConfig(round_files=5, batches_per_block=1)
    got = ingest_ray(list_source(root), encoders, store, _config(tmp_path / "ray.csv"), config)
    for vector in ("tiny-thumb8", "phash-8"):
        assert _points(store, vector) == _points(single, vector)
    assert len(_points(store)) == 7
    assert [_counts(s) for s in got] == [_counts(s) for s in expected] == [(13, 7, 0, 1, 0, 4, 1)] * 2
    assert [s.problems for s in got] == [s.problems for s in expected]
    assert [s.point_ids for s in got] == [s.point_ids for s in expected]
    assert (tmp_path / "ray.csv").read_text() == (tmp_path / "single.csv").read_text()
    assert "truncated.jpg,failed," in (tmp_path / "ray.csv").read_text()  # a corrupt file is reported, not fatal


@needs_ray
@pytest.mark.parametrize("encoder", [BatchMeanEncoder(), ModelFreeBatchMeanEncoder()], ids=["actors", "in-tasks"])
def test_ray_batches_the_files_as_the_single_process_ingest_does(
    local_ray: Any, tmp_path: Path, encoder: BatchMeanEncoder
) -> None:
    # 130 files, batches of 4, blocks of up to 16 files: evenly split blocks (15, 15, 14, …) would mix the batches.
    write_noise_images(tmp_path / "imgs", 130)
    single, [expected] = _single(tmp_path / "imgs", tmp_path, [encoder])
    store = open_test_store("edge", tmp_path / "ray")
    config = RayConfig(batches_per_block=4, small_block_files=16)
    [got] = ingest_ray(
        list_source(tmp_path / "imgs"), [RemoteEncoder(encoder, batch_mean)], store, _config(tmp_path / "r.csv"), config
    )
    assert _counts(got) == _counts(expected) == (130, 130, 0, 0, 0, 0, 0)
    assert _points(store, "tiny-thumb8") == _points(single, "tiny-thumb8")


@needs_ray
def test_a_second_ray_run_decodes_nothing_already_stored(local_ray: Any, tmp_path: Path) -> None:
    # Into the server backend (qdrant-client's local mode standing in), which is what --qdrant-url writes to.
    write_noise_images(tmp_path / "imgs", 6)
    log = tmp_path / "decoded.log"
    encoder = RemoteEncoder(DecodeLogEncoder(log), tiny)
    store = open_test_store("server", tmp_path / "ray")
    first = ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), RayConfig())
    write_noise_images(tmp_path / "imgs" / "new", 2, seed=1)
    second = ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), RayConfig())
    assert _counts(first[0]) == (6, 6, 0, 0, 0, 0, 0) and _counts(second[0]) == (8, 2, 6, 0, 0, 0, 0)
    assert log.read_text().count("decoded") == 8  # the 6 stored were checked against the store, never decoded


@needs_ray
def test_an_encode_actor_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(
    local_ray: Any, tmp_path: Path
) -> None:
    write_noise_images(tmp_path / "imgs", 24)
    single, [expected] = _single(tmp_path / "imgs", tmp_path, [TinyEncoder()])
    marker = tmp_path / "crashed"
    encoder = RemoteEncoder(TinyEncoder(), functools.partial(crash_once, marker, 3))  # dies in its 2nd block
    store = open_test_store("edge", tmp_path / "ray")
    config = RayConfig(batches_per_block=2, retries=3)
    [got] = ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), config)
    assert marker.exists()  # the actor did die
    assert _counts(got) == _counts(expected) == (24, 24, 0, 0, 0, 0, 0)
    assert got.point_ids == expected.point_ids
    assert _points(store, "tiny-thumb8") == _points(single, "tiny-thumb8")


@needs_ray
def test_an_encoder_with_no_model_is_encoded_in_the_decode_tasks_with_no_actor(
    local_ray: Any, mixed_image_folder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = mixed_image_folder.root
    single, [expected] = _single(root, tmp_path, [ModelFreeEncoder()])
    monkeypatch.setattr(distributed, "_ActorPool", no_actor_pool)
    store = open_test_store("edge", tmp_path / "ray")
    encoder = RemoteEncoder(ModelFreeEncoder(), tiny)
    [got] = ingest_ray(list_source(root), [encoder], store, _config(tmp_path / "r.csv"), RayConfig(small_block_files=4))
    assert _counts(got) == _counts(expected) == (13, 7, 0, 1, 0, 4, 1)
    assert got.point_ids == expected.point_ids and got.problems == expected.problems
    assert _points(store, "tiny-thumb8") == _points(single, "tiny-thumb8")
    assert (tmp_path / "r.csv").read_text() == (tmp_path / "single.csv").read_text()


@needs_ray
def test_a_decode_task_killed_mid_run_is_retried_and_nothing_is_lost_or_doubled(local_ray: Any, tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 24)
    single, [expected] = _single(tmp_path / "imgs", tmp_path, [TinyEncoder()])
    marker = tmp_path / "crashed"
    encoder = RemoteEncoder(ModelFreeEncoder(marker, crash_on=3), tiny)  # a task's process dies in its 3rd file
    store = open_test_store("edge", tmp_path / "ray")
    config = RayConfig(small_block_files=8, retries=3)
    [got] = ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), config)
    assert marker.exists()  # the task's process did die
    assert _counts(got) == _counts(expected) == (24, 24, 0, 0, 0, 0, 0)
    assert got.point_ids == expected.point_ids
    assert _points(store, "tiny-thumb8") == _points(single, "tiny-thumb8")


@needs_ray
def test_a_run_stopped_by_a_dead_actor_is_completed_by_running_it_again(local_ray: Any, tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 24)
    single, _ = _single(tmp_path / "imgs", tmp_path, [TinyEncoder()])
    encoder = RemoteEncoder(TinyEncoder(), functools.partial(crash_once, tmp_path / "crashed", 3))
    store = open_test_store("edge", tmp_path / "ray")
    config = RayConfig(batches_per_block=2, retries=0)  # no restart: the run stops
    with pytest.raises(LookalikeError, match="run the same command again to resume"):
        ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), config)
    kept = len(_points(store))
    [again] = ingest_ray(list_source(tmp_path / "imgs"), [encoder], store, _config(tmp_path / "r.csv"), config)
    assert again.already_present == kept and again.ingested == 24 - kept
    assert _points(store, "tiny-thumb8") == _points(single, "tiny-thumb8")


def test_the_worker_side_of_a_model_free_ingest_starts_without_torch() -> None:
    # A Ray worker imports what its tasks need on its first task; torch alone was ≈ 2.5 s of a cold run on 2 cores.
    encoders = [create_encoder("phash"), create_encoder("dlib", options=EncoderOptions(no_face="center"))]
    code = (
        "import pickle, sys; import pipeline.index.ray_workers; "
        f"pickle.loads(bytes.fromhex({pickle.dumps(encoders).hex()!r})); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"
