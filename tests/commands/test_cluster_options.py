"""`--shards`, `--replicas`, `--write-consistency`: taken by the commands that may create a collection, sent when a
collection is created on a server, refused in one line where they cannot apply; `lookalike collections` shows the
layout the server reports.

A Qdrant server cannot run here: the server is qdrant-client's local mode behind a client that records what
`create_collection` was asked and reports it back, as a server records a collection's layout in its config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from fakes import write_noise_images
from qdrant_client import QdrantClient
from typer.testing import CliRunner

from cli import app
from commands.index import describe_collection
from pipeline.core.config import ClusterLayout
from pipeline.store import Catalog, CollectionInfo, VectorSpec
from pipeline.store.server import ServerBackend

runner = CliRunner()
URL = "http://qdrant-node1.test:6433"
LAYOUT_FLAGS = {"--shards", "--replicas", "--write-consistency"}


class RecordingClient(QdrantClient):
    """Local mode that keeps each create_collection's layout fields and reports them back from get_collection, as a
    server records them in the collection's config."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.created: dict[str, dict[str, Any]] = {}

    def create_collection(self, collection_name: str, **kwargs: Any) -> bool:
        self.created[collection_name] = kwargs
        return bool(super().create_collection(collection_name, **kwargs))

    def close(self, grpc_grace: float | None = None, **kwargs: Any) -> None:
        """A server outlives each command's connection: keep the collections for the next command."""

    def get_collection(self, collection_name: str) -> Any:
        info = super().get_collection(collection_name)
        fields = ("shard_number", "replication_factor", "write_consistency_factor")
        recorded = {k: v for k, v in self.created.get(collection_name, {}).items() if k in fields}
        params = info.config.params.model_copy(update=recorded)
        return info.model_copy(update={"config": info.config.model_copy(update={"params": params})})


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> tuple[RecordingClient, list[ClusterLayout | None]]:
    """`--qdrant-url` connects to one RecordingClient for the whole test; returns it and the layouts connect got."""
    client = RecordingClient()
    layouts: list[ClusterLayout | None] = []

    def connect(
        url: str, api_key: str | None, timeout_s: int, hnsw_ef: int, layout: ClusterLayout | None = None
    ) -> Any:
        layouts.append(layout)
        return ServerBackend(client, f"fake server {url}", remote=False, hnsw_ef=hnsw_ef, layout=layout)

    monkeypatch.setattr(ServerBackend, "connect", staticmethod(connect))
    return client, layouts


def _ingest(folder: Path, *extra: str) -> Any:
    args = ["ingest", str(folder), "-c", "imgs", "-e", "phash", "--workers", "0", "--no-progress"]
    return runner.invoke(app, [*args, "--report", str(folder.parent / "report.csv"), *extra])


def test_ingest_sends_the_layout_and_collections_shows_it(
    tmp_path: Path, fake_server: tuple[RecordingClient, list[ClusterLayout | None]]
) -> None:
    client, layouts = fake_server
    write_noise_images(tmp_path / "imgs", 4, size=(32, 32))
    flags = ["--shards", "6", "--replicas", "2", "--write-consistency", "2"]
    result = _ingest(tmp_path / "imgs", "--qdrant-url", URL, *flags)
    assert result.exit_code == 0, result.output
    assert "ingested 4" in result.output
    assert layouts == [ClusterLayout(6, 2, 2)]
    sent = client.created["imgs"]
    assert (sent["shard_number"], sent["replication_factor"], sent["write_consistency_factor"]) == (6, 2, 2)
    shown = runner.invoke(app, ["collections", "--qdrant-url", URL])
    assert shown.exit_code == 0, shown.output
    assert "server (6 shards × 2 replicas, write consistency 2), exact scan  phash:8 [phash:1]" in shown.output


def test_a_plain_server_ingest_sends_no_layout(
    tmp_path: Path, fake_server: tuple[RecordingClient, list[ClusterLayout | None]]
) -> None:
    client, _ = fake_server
    write_noise_images(tmp_path / "imgs", 2, size=(32, 32))
    assert _ingest(tmp_path / "imgs", "--qdrant-url", URL).exit_code == 0
    assert not {"shard_number", "replication_factor", "write_consistency_factor"} & set(client.created["imgs"])


def test_an_existing_collection_keeps_its_layout(
    tmp_path: Path, fake_server: tuple[RecordingClient, list[ClusterLayout | None]]
) -> None:
    """Qdrant fixes a collection's shards when it is created: a later run's flags apply only to new collections."""
    client, _ = fake_server
    write_noise_images(tmp_path / "imgs", 2, size=(32, 32))
    assert _ingest(tmp_path / "imgs", "--qdrant-url", URL, "--shards", "2").exit_code == 0
    again = _ingest(tmp_path / "imgs", "--qdrant-url", URL, "--shards", "8")
    assert again.exit_code == 0 and "already present 2" in again.output
    assert client.created["imgs"]["shard_number"] == 2


REFUSED = [  # (flags, the flag the one line names, what it says)
    (["--shards", "3"], "--shards", "the embedded store keeps each collection in one shard"),
    (["--replicas", "2", "--write-consistency", "2"], "--replicas", "the embedded store"),
    (["--qdrant-url", URL, "--write-consistency", "2"], "--write-consistency", "more than the 1 replica"),
    (["--qdrant-url", URL, "--replicas", "2", "--write-consistency", "3"], "--write-consistency", "2 replicas"),
]


@pytest.mark.parametrize(("flags", "named", "says"), REFUSED, ids=[" ".join(f) for f, _, _ in REFUSED])
@pytest.mark.parametrize("command", [["ingest", "imgs", "-c", "c"], ["eval", "retrieval", "--dataset", "imgs"]])
def test_a_layout_that_cannot_apply_is_refused_in_one_line_before_any_work(
    command: list[str],
    flags: list[str],
    named: str,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_server: tuple[RecordingClient, list[ClusterLayout | None]],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QDRANT_URL", raising=False)
    write_noise_images(tmp_path / "imgs", 2, size=(32, 32))
    result = runner.invoke(app, [*command, "-e", "phash", *flags, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
    assert lines[0].endswith(f"(set by {named})"), lines[0]
    assert not (tmp_path / "store").exists() and not fake_server[1]  # neither store was opened


def test_the_layout_flags_are_on_the_commands_that_may_create_a_collection_only() -> None:
    root = typer.main.get_command(app)
    options = {
        name: {opt for p in command.params for opt in p.opts}
        for name, command in getattr(root, "commands", {}).items()
        if not hasattr(command, "commands")
    }
    eval_retrieval = getattr(root, "commands", {})["eval"].commands["retrieval"]
    options["eval retrieval"] = {opt for p in eval_retrieval.params for opt in p.opts}
    for creator in ("ingest", "finetune", "eval retrieval"):
        assert LAYOUT_FLAGS.issubset(options[creator]), creator
    for reader in ("query", "collections", "dedup", "map", "serve"):
        assert not LAYOUT_FLAGS & options[reader], reader


def _info(backend: str, layout: ClusterLayout | None) -> CollectionInfo:
    spec = VectorSpec("phash", 64, "euclid")
    return CollectionInfo("faces", backend, 12, 12, 1, {"phash": spec}, Catalog({"phash": "phash"}), layout)


@pytest.mark.parametrize(
    ("layout", "shown"),
    [
        (ClusterLayout(6, 2, 2), "server (6 shards × 2 replicas, write consistency 2), HNSW"),
        (ClusterLayout(1, 1, 1), "server (1 shard × 1 replica, write consistency 1), HNSW"),
        (ClusterLayout(3, None, None), "server (3 shards), HNSW"),
        (ClusterLayout(), "server, HNSW"),  # local mode reports none
        (None, "server, HNSW"),
    ],
)
def test_collections_line_shows_the_reported_layout(layout: ClusterLayout | None, shown: str) -> None:
    line = describe_collection(_info("server", layout))
    assert shown in line and "phash [version unknown]" in line


def test_an_embedded_collection_line_is_unchanged() -> None:
    assert describe_collection(_info("edge", None)).split()[1:] == [
        "12",
        "points",
        "edge,",
        "HNSW",
        "phash",
        "[version",
        "unknown]",
    ]
