"""A server collection's cluster layout (shards, replicas, write consistency): what qdrant-client puts on the wire
when lookalike creates a collection, what lookalike reads back, and the layouts it refuses.

No Qdrant server (let alone a cluster) can run here, so the real client talks to a fake HTTP transport that records
each request and answers as a server would; qdrant-client's local mode (the server stand-in of the other tests) must
accept a layout and ignore it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models

from pipeline.core.config import ClusterLayout, StoreConfig
from pipeline.core.errors import LookalikeError
from pipeline.store import Catalog, Point, VectorSpec, VectorStore, point_id_for
from pipeline.store.opening import open_backend
from pipeline.store.server import ServerBackend

URL = "http://qdrant-node1.test:6433"
SPEC = VectorSpec("phash", 64, "euclid")
CATALOG = Catalog({"phash": "phash"}, {"phash": "phash:1"})
LAYOUT_FIELDS = ("shard_number", "replication_factor", "write_consistency_factor")
Answers = Mapping[tuple[str, str], Any]


def _ok(result: Any) -> dict[str, Any]:
    return {"result": result, "status": "ok", "time": 0.0}


BASE_ANSWERS: dict[tuple[str, str], Any] = {
    ("GET", "/"): {"title": "qdrant - vector search engine", "version": "1.20.0"},  # the client's version check
    ("GET", "/collections"): _ok({"collections": []}),
    ("PUT", "/collections/faces"): _ok(True),
    ("PUT", "/collections/faces/index"): _ok({"operation_id": 1, "status": "completed"}),
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Callable[[Answers], list[httpx.Request]]:
    """Install a fake server answering (method, path) → JSON body; returns the list its requests are recorded in.
    A request it has no answer for gets a 404, as from a server without that collection."""

    def install(extra: Answers) -> list[httpx.Request]:
        answers = {**BASE_ANSWERS, **extra}
        sent: list[httpx.Request] = []

        def send(self: httpx.Client, request: httpx.Request, **_: Any) -> httpx.Response:
            sent.append(request)
            body = answers.get((request.method, request.url.path))
            if body is None:
                return httpx.Response(404, json={"status": {"error": "Not found"}, "time": 0.0}, request=request)
            return httpx.Response(200, json=body, request=request)

        monkeypatch.setattr(httpx.Client, "send", send)
        return sent

    return install


def _client() -> QdrantClient:
    return QdrantClient(url=URL, check_compatibility=False)  # no version-check thread outliving the fake


def _create_body(sent: list[httpx.Request]) -> dict[str, Any]:
    [create] = [r for r in sent if r.method == "PUT" and r.url.path == "/collections/faces"]
    return dict(json.loads(create.content))


def test_a_layout_is_sent_with_the_create_collection_request(server: Callable[[Answers], list[httpx.Request]]) -> None:
    sent = server({})
    ServerBackend(_client(), layout=ClusterLayout(6, 2, 2)).create_collection("faces", [SPEC], CATALOG)
    body = _create_body(sent)
    assert {k: body[k] for k in LAYOUT_FIELDS} == {
        "shard_number": 6,
        "replication_factor": 2,
        "write_consistency_factor": 2,
    }
    assert body["vectors"] == {"phash": {"size": 64, "distance": "Euclid"}}
    assert body["metadata"] == {"lookalike": {"encoders": {"phash": "phash"}, "versions": {"phash": "phash:1"}}}
    indexed = [json.loads(r.content)["field_name"] for r in sent if r.url.path == "/collections/faces/index"]
    assert indexed == ["path", "label", "group", "sha256"]  # the payload indexes still follow


def test_without_a_layout_the_request_is_the_single_node_one(server: Callable[[Answers], list[httpx.Request]]) -> None:
    """Regression guard: a plain `--qdrant-url` run must send exactly what it sent before layouts existed."""
    sent = server({})
    ServerBackend(_client()).create_collection("faces", [SPEC], CATALOG)
    assert set(_create_body(sent)) == {"vectors", "metadata"}


def test_only_the_settings_given_are_sent(server: Callable[[Answers], list[httpx.Request]]) -> None:
    sent = server({})
    ServerBackend(_client(), layout=ClusterLayout(shards=3)).create_collection("faces", [SPEC], CATALOG)
    body = _create_body(sent)
    assert body["shard_number"] == 3 and "replication_factor" not in body and "write_consistency_factor" not in body


def _collection_answer(params: models.CollectionParams) -> dict[str, Any]:
    """`GET /collections/faces` as a server answers it, built from qdrant-client's own response model."""
    info = models.CollectionInfo(
        status=models.CollectionStatus.GREEN,
        optimizer_status=models.OptimizersStatusOneOf.OK,
        points_count=7,
        indexed_vectors_count=0,
        segments_count=6,
        config=models.CollectionConfig(
            params=params,
            hnsw_config=models.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            optimizer_config=models.OptimizersConfig(default_segment_number=0, flush_interval_sec=5),
            metadata=CATALOG.to_metadata(),
        ),
        payload_schema={},
    )
    return _ok(info.model_dump(mode="json", exclude_none=True))


def test_info_reads_the_layout_the_server_records(server: Callable[[Answers], list[httpx.Request]]) -> None:
    params = models.CollectionParams(
        vectors={"phash": models.VectorParams(size=64, distance=models.Distance.EUCLID)},
        shard_number=6,
        replication_factor=2,
        write_consistency_factor=2,
    )
    server(
        {
            ("GET", "/collections/faces/exists"): _ok({"exists": True}),
            ("GET", "/collections/faces"): _collection_answer(params),
        }
    )
    info = ServerBackend(_client()).info("faces")
    assert info.layout == ClusterLayout(6, 2, 2)
    assert (info.points, info.segments, info.specs) == (7, 6, {"phash": SPEC})
    assert info.catalog == CATALOG


def test_connect_gives_the_configured_layout_to_the_collections_it_creates(
    server: Callable[[Answers], list[httpx.Request]],
) -> None:
    """`StoreConfig.layout` reaches the request through `open_backend` → `ServerBackend.connect`."""
    sent = server({})
    backend = open_backend(StoreConfig(url=URL, layout=ClusterLayout(4, 3, 2)))
    try:
        backend.create_collection("faces", [SPEC], CATALOG)
        deadline = time.monotonic() + 5  # let connect's version check (a thread) finish while the fake is installed
        while not any(r.url.path == "/" for r in sent) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        backend.close()
    body = _create_body(sent)
    assert [body[k] for k in LAYOUT_FIELDS] == [4, 3, 2]


def test_local_mode_accepts_a_layout_and_ignores_it() -> None:
    """The server stand-in has one shard in memory: a layout changes nothing there and breaks nothing."""
    store = VectorStore(
        ServerBackend(QdrantClient(":memory:"), "local mode", remote=False, layout=ClusterLayout(6, 2, 2))
    )
    spec = VectorSpec("v", 2, "cosine")
    store.ensure_collection("c", [spec], {"v": "tiny"})
    store.merge_points(
        "c", [Point(point_id_for("a" * 64), {"v": np.array([1.0, 0.0], dtype=np.float32)}, {"path": "a"})]
    )
    [[hit]] = store.query("c", spec, np.array([[1.0, 0.0]], dtype=np.float32), k=1)
    assert hit.payload["path"] == "a"
    assert store.info("c").layout == ClusterLayout()  # local mode reports none


@pytest.mark.parametrize(
    ("layout", "setting", "message"),
    [
        (ClusterLayout(shards=0), "shards", "shards 0: expected a whole number ≥ 1"),
        (ClusterLayout(replicas=-1), "replicas", "replicas -1: expected a whole number ≥ 1"),
        (ClusterLayout(write_consistency=0), "write_consistency", "write consistency 0: expected"),
        (ClusterLayout(replicas=2, write_consistency=3), "write_consistency", "more than the 2 replicas of each shard"),
        (ClusterLayout(write_consistency=2), "write_consistency", "more than the 1 replica of each shard"),
    ],
)
def test_a_layout_no_server_could_keep_is_refused(layout: ClusterLayout, setting: str, message: str) -> None:
    with pytest.raises(LookalikeError, match=message) as caught:
        StoreConfig(url=URL, layout=layout)
    assert caught.value.setting == setting and "\n" not in str(caught.value)


def test_a_layout_for_the_embedded_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    with pytest.raises(LookalikeError, match="replicas 2: a setting of a Qdrant server") as caught:
        StoreConfig.from_env(layout=ClusterLayout(replicas=2, write_consistency=2))
    assert caught.value.setting == "replicas"  # the first one given; the CLI names its flag
    monkeypatch.setenv("QDRANT_URL", URL)  # the server may come from the environment
    assert StoreConfig.from_env(layout=ClusterLayout(replicas=2, write_consistency=2)).layout.replicas == 2


def test_valid_layouts_pass() -> None:
    assert StoreConfig(url=URL, layout=ClusterLayout(6, 2, 2)).layout == ClusterLayout(6, 2, 2)
    assert StoreConfig(url=URL, layout=ClusterLayout(write_consistency=1)).layout.write_consistency == 1
    assert ClusterLayout().is_default and not ClusterLayout(shards=1).is_default
