"""A damaged embedded store ends in one line, never a traceback or a Rust panic's backtrace: store files emptied,
cut in half or overwritten with noise (the campaign's truncated metadata, and the engine's own files), then
`collections`, `query` and `ingest` run on it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fakes import write_noise_images
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
DAMAGED = [  # (file under the collection folder, how): each one made the engine or lookalike fail
    ("catalog.json", "empty"),
    ("catalog.json", "half"),
    ("catalog.json", "noise"),
    ("shard/edge_config.json", "half"),
    ("shard/wal/first-index", "empty"),
    ("shard/wal/open-1", "noise"),
    ("shard/segments/*/segment.json", "half"),
    ("shard/segments/*/version.info", "empty"),
    ("shard/segments/*/vector_storage-*/vectors/status.dat", "empty"),  # a Rust panic in 0.9.0
    ("shard/segments/*/payload_index/*-path-null/is_null/status.dat", "half"),  # a Rust panic in 0.9.0
]


@pytest.fixture(scope="module")
def healthy_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("healthy")
    write_noise_images(root / "imgs", 12)
    store = root / "store"
    args = ["ingest", str(root / "imgs"), "-c", "c", "-e", "phash", "--workers", "0", "--no-progress"]
    assert runner.invoke(app, [*args, "--store", str(store)]).exit_code == 0
    return root / "imgs", store


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(os.urandom(min(len(data), 4096)) + data[4096:])


@pytest.mark.parametrize(("pattern", "how"), DAMAGED, ids=[f"{p} {h}" for p, h in DAMAGED])
@pytest.mark.parametrize("command", ["collections", "query", "ingest"])
def test_a_damaged_store_is_one_line(
    healthy_store: tuple[Path, Path], tmp_path: Path, pattern: str, how: str, command: str
) -> None:
    images, healthy = healthy_store
    store = tmp_path / "store"
    shutil.copytree(healthy, store)
    [target] = (store / "collections" / "c").glob(pattern)
    _damage(target, how)
    args = {
        "collections": ["collections"],
        "query": ["query", str(next(images.rglob("*.png"))), "-c", "c"],
        "ingest": ["ingest", str(images), "-c", "c", "-e", "phash", "--workers", "0", "--no-progress"],
    }[command]
    result = runner.invoke(app, [*args, "--store", str(store)])
    assert "Traceback" not in result.output and "panicked" not in result.output
    if result.exit_code == 0:  # the engine may recover from some damage: then the data must all be there
        assert command != "collections" or " 12 points" in result.stdout
        return
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error:") and ("damaged" in line or "collection 'c'" in line), line
