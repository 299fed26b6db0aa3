"""A small phash collection with planted duplicates, and apps over it (FastAPI's TestClient, no network)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fakes import write_planted_folder
from PIL import Image
from typer.testing import CliRunner

from cli import app as cli_app
from pipeline.core.config import StoreConfig
from pipeline.encoders import create_encoder
from pipeline.store import VectorStore

if TYPE_CHECKING:  # the serve extra: each test module skips itself when fastapi is missing
    from fastapi.testclient import TestClient

    from pipeline.serve import ServeSettings

COLLECTION = "photos"


@dataclass(frozen=True)
class Planted:
    """Six distinct images in photos/ (label none), a half-size JPEG of img0 and a byte copy of img1 in photos/sub/
    (label "sub"), ingested with phash into the store folder `store`; `runs` is the server's runs folder."""

    root: Path
    paths: dict[str, Path]
    store: Path
    runs: Path


plant = write_planted_folder


def ingest(base: Path) -> Planted:
    paths = plant(base / "photos")
    store = base / "qdrant"
    args = ["ingest", str(base / "photos"), "-c", COLLECTION, "-e", "phash", "--workers", "0", "--no-progress"]
    result = CliRunner().invoke(cli_app, [*args, "--report", str(base / "ingest.csv"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return Planted(base / "photos", paths, store, base / "runs")


def near_copy(path: Path, out: Path) -> Path:
    """A fresh (not indexed) smaller JPEG of an image."""
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(path).resize((96, 72)).save(out, quality=80)
    return out


def open_store(planted: Planted) -> VectorStore:
    return VectorStore.open(StoreConfig(path=str(planted.store)))


def make_client(store: VectorStore, settings: ServeSettings) -> TestClient:
    import torch
    from fastapi.testclient import TestClient

    from pipeline.serve import create_app

    return TestClient(create_app(settings, store, lambda spec: create_encoder(spec, torch.device("cpu"))))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Planted, VectorStore]]:
    """One ingested collection for the tests that only read (the embedded store is one process's: opened once)."""
    planted = ingest(tmp_path_factory.mktemp("serve"))
    store = open_store(planted)
    yield planted, store
    store.close()


@pytest.fixture
def client_for(shared: tuple[Planted, VectorStore]) -> Callable[..., TestClient]:
    """A client of an app over the shared collection, with these settings (runs folder: the planted one)."""
    planted, store = shared

    def build(**settings: Any) -> TestClient:
        from pipeline.serve import ServeSettings

        return make_client(store, ServeSettings(collection=COLLECTION, runs=planted.runs, **settings))

    return build


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for()


def wait_for_compute(client: TestClient, seconds: float = 120.0) -> dict[str, Any]:
    """The compute job's status once it is no longer running."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = dict(client.get("/api/duplicates/compute/status").json())
        if status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError(f"the compute job still runs after {seconds:.0f} s")


def compute_now(client: TestClient, threshold: float = 0.9) -> dict[str, Any]:
    """Start "compute now" on the collection and wait for it: its final status."""
    started = client.post("/api/duplicates/compute", json={"collection": COLLECTION, "threshold": threshold})
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "running"
    return wait_for_compute(client)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Planted, TestClient]]:
    """A collection of its own (files move here) and a client with 1 group per page, duplicates computed (2 groups:
    img0 with its half-size copy, img1 with its byte copy)."""
    from pipeline.serve import ServeSettings

    planted = ingest(tmp_path)
    with open_store(planted) as store:
        client = make_client(store, ServeSettings(collection=COLLECTION, runs=planted.runs, page_size=1))
        computed = compute_now(client)
        assert computed["state"] == "done" and computed["groups"] == 2, computed
        yield planted, client
