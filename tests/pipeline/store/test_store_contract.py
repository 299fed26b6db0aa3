"""The store contract, run against both backends: the embedded engine (edge) and qdrant-client (the server path,
through its local mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.config import StoreConfig
from pipeline.core.errors import EncoderVersionError, LookalikeError, StoreError
from pipeline.store import (
    Catalog,
    LegacyCollectionWarning,
    Point,
    VectorSpec,
    VectorStore,
    only_ids,
    point_id_for,
    where_filter,
)

SPEC = VectorSpec("v", 3, "cosine")


def _points() -> list[Point]:
    vectors = {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0.9, 0.1, 0]}
    return [
        Point(point_id_for(k), {"v": np.array(v, dtype=np.float32)}, {"path": f"/{k}.jpg", "label": k.upper()})
        for k, v in vectors.items()
    ]


def test_point_id_is_deterministic_uuid5() -> None:
    assert point_id_for("ab" * 32) == point_id_for("ab" * 32)
    assert point_id_for("ab" * 32) != point_id_for("cd" * 32)


def test_collection_records_encoder_and_refuses_another(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"})
    vector_store.ensure_collection("c", [SPEC])  # same spec again: fine
    assert vector_store.encoder_specs("c") == {"v": "tiny:thumb8"}
    with pytest.raises(StoreError, match="made with encoder"):
        vector_store.ensure_collection("c", [VectorSpec("v", 4, "cosine")])
    with pytest.raises(StoreError, match="made with encoder"):
        vector_store.ensure_collection("c", [VectorSpec("other", 3, "cosine")])


def test_collection_records_encoder_versions_and_refuses_another(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"}, {"v": "tiny:1"})
    assert vector_store.encoder_versions("c") == {"v": "tiny:1"}
    vector_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"}, {"v": "tiny:1"})  # same version: fine
    vector_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"}, {"v": "unknown"})  # a versionless encoder: fine
    with pytest.raises(EncoderVersionError) as caught:
        vector_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"}, {"v": "tiny:2"})
    message = str(caught.value)
    assert "\n" not in message and "'c'" in message and "tiny:thumb8" in message
    assert "version tiny:1" in message and "version tiny:2" in message and "re-ingest into a new collection" in message
    assert caught.value.setting == "collection"  # the CLI names --collection


def test_collection_made_before_versions_is_accepted_with_a_warning(vector_store: VectorStore) -> None:
    # Regression guard: stores made before versions were recorded must keep working (no "versions" recorded).
    vector_store.backend.create_collection("old", [SPEC], Catalog({"v": "tiny:thumb8"}))
    assert vector_store.encoder_versions("old") == {}
    with pytest.warns(LegacyCollectionWarning, match="'old' records no encoder version.*tiny:thumb8.*tiny:2"):
        vector_store.ensure_collection("old", [SPEC], {"v": "tiny:thumb8"}, {"v": "tiny:2"})
    vector_store.check_encoder_version("old", "v", "tiny:thumb8", "unknown")  # nothing known on either side: quiet
    assert vector_store.encoder_versions("old") == {}  # nothing is recorded after the fact


def test_query_ranks_by_similarity_and_filters(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC])
    vector_store.upsert("c", _points())
    [hits] = vector_store.query("c", SPEC, np.array([[1, 0, 0]], dtype=np.float32), k=3)
    assert [h.label for h in hits] == ["A", "C", "B"]
    assert hits[0].score == pytest.approx(1.0) and hits[0].rank == 1
    [hits] = vector_store.query("c", SPEC, np.array([1, 0, 0], dtype=np.float32), 3, where_filter({"label": "B"}))
    assert [h.label for h in hits] == ["B"]
    not_a = where_filter(None, [point_id_for("a")])
    [hits] = vector_store.query("c", SPEC, np.array([1, 0, 0], dtype=np.float32), 3, not_a)
    assert [h.label for h in hits] == ["C", "B"]


def test_present_ids_counts_missing_vector_records(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC])
    no_face = Point(point_id_for("d"), {}, {"path": "/d.jpg", "missing_vectors": ["v"]})
    vector_store.upsert("c", [*_points(), no_face])
    ids = [point_id_for(k) for k in "abcdz"]
    assert vector_store.present_ids("c", ids, "v") == set(ids[:4])


def test_locked_embedded_store_points_to_server_mode(tmp_path: Path) -> None:
    config = StoreConfig(path=str(tmp_path / "q"))
    with VectorStore.open(config), pytest.raises(StoreError, match=r"run a Qdrant server .* give its URL") as caught:
        VectorStore.open(config)
    assert caught.value.setting == "qdrant_url"  # the CLI names --qdrant-url


def test_store_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://q:6333")
    monkeypatch.setenv("QDRANT_API_KEY", "k")
    config = StoreConfig.from_env()
    assert config.is_server and config.api_key == "k"
    assert StoreConfig.from_env(url="http://other:6333").url == "http://other:6333"
    assert StoreConfig.from_env().hnsw_ef == 128
    monkeypatch.setenv("LOOKALIKE_HNSW_EF", "512")
    assert StoreConfig.from_env().hnsw_ef == 512
    monkeypatch.setenv("LOOKALIKE_HNSW_EF", "0")
    with pytest.raises(LookalikeError, match="LOOKALIKE_HNSW_EF='0': expected a whole number"):
        StoreConfig.from_env()


TWO = [SPEC, VectorSpec("w", 2, "cosine")]


def _retrieve(store: VectorStore, key: str) -> tuple[dict, dict]:
    [record] = store.backend.retrieve("c", [point_id_for(key)], True, [s.name for s in TWO])
    return {k: v.tolist() for k, v in record.vectors.items()}, dict(record.payload)


def test_upsert_replaces_the_whole_point(vector_store: VectorStore) -> None:
    """Why ingest writes through merge_points: Qdrant's upsert drops the vectors the new point does not carry."""
    vector_store.ensure_collection("c", TWO)
    vector_store.upsert("c", [Point(point_id_for("a"), {"v": np.array([1, 0, 0], dtype=np.float32)})])
    vector_store.upsert("c", [Point(point_id_for("a"), {"w": np.array([0, 1], dtype=np.float32)})])
    vectors, _ = _retrieve(vector_store, "a")
    assert set(vectors) == {"w"}


def test_merge_points_keeps_other_vectors_and_payload(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", TWO)
    pid = point_id_for("a")
    vector_store.merge_points("c", [Point(pid, {"v": np.array([1, 0, 0], dtype=np.float32)}, {"path": "/a", "x": 1})])
    vector_store.merge_points("c", [Point(pid, {"w": np.array([0, 1], dtype=np.float32)}, {"path": "/a", "y": 2})])
    vectors, payload = _retrieve(vector_store, "a")
    assert set(vectors) == {"v", "w"} and vectors["v"] == pytest.approx([1, 0, 0])
    assert payload == {"path": "/a", "x": 1, "y": 2, "missing_vectors": []}
    assert vector_store.present_ids("c", [pid], "v") == vector_store.present_ids("c", [pid], "w") == {pid}


def test_merge_points_merges_missing_vector_records(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", TWO)
    pid = point_id_for("a")
    vector_store.merge_points("c", [Point(pid, {}, {"path": "/a"}, missing=("v",))])
    vector_store.merge_points("c", [Point(pid, {}, {"path": "/a"}, missing=("w",))])
    assert _retrieve(vector_store, "a")[1]["missing_vectors"] == ["v", "w"]
    assert vector_store.present_ids("c", [pid], "v") == {pid}  # recorded as having none: done
    assert vector_store.present_ids("c", [pid], "v", retry_missing=True) == set()
    vector_store.merge_points("c", [Point(pid, {"v": np.array([0, 0, 1], dtype=np.float32)}, {"path": "/a"})])
    vectors, payload = _retrieve(vector_store, "a")
    assert set(vectors) == {"v"} and payload["missing_vectors"] == ["w"]  # a later vector clears its record
    assert vector_store.present_ids("c", [pid], "v", retry_missing=True) == {pid}


def test_collection_of_two_encoders_refuses_a_third(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", TWO, {"v": "a", "w": "b"})
    vector_store.ensure_collection("c", TWO[1:])  # a subset: fine
    with pytest.raises(StoreError, match=r"made with encoder\(s\) v, w, not x"):
        vector_store.ensure_collection("c", [VectorSpec("x", 3, "cosine")])


def test_multivector_collection_scores_by_max_sim(vector_store: VectorStore) -> None:
    spec = VectorSpec("m", 3, "dot", multivector=True)
    vector_store.ensure_collection("c", [spec])
    assert vector_store.vector_specs("c") == {"m": spec}
    sets = {
        "a": [[1, 0, 0], [0, 1, 0]],
        "b": [[0, 0, 1]],
        "c": [[0.5, 0.5, 0], [0, 0, 0.2], [1, 1, 1]],
    }
    vector_store.upsert(
        "c", [Point(point_id_for(k), {"m": np.array(v, np.float32)}, {"label": k}) for k, v in sets.items()]
    )
    query = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)  # one set of two vectors, not two queries
    [hits] = vector_store.query("c", spec, query, k=3)
    # MAX_SIM by hand, the sum over query vectors of the best dot product: a 1 + 0, b 0 + 1, c max(.5, 0, 1) + 1
    assert hits[0].label == "c" and {h.label: h.score for h in hits} == pytest.approx({"a": 1.0, "b": 1.0, "c": 2.0})
    with pytest.raises(StoreError, match="made with encoder"):
        vector_store.ensure_collection("c", [VectorSpec("m", 3, "dot")])  # same name, single vectors: refused


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "-x", "a b", "x" * 201])
def test_bad_collection_names_are_refused_in_one_line(vector_store: VectorStore, name: str) -> None:
    # Regression: `-c ''`, `-c .`, `-c ..`, `-c a/b` ended in tracebacks; in the embedded store a name is a folder.
    with pytest.raises(StoreError, match=r"collection name .* is not allowed") as caught:
        vector_store.ensure_collection(name, [SPEC])
    assert "\n" not in str(caught.value)


def test_reads_page_count_filter_and_list(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC], {"v": "tiny"}, {"v": "tiny:1"})
    vector_store.ensure_collection("d", [SPEC])
    points = [
        Point(point_id_for(str(i)), {"v": np.array([1, i, 0], np.float32)}, {"path": f"/{i}", "label": f"L{i % 2}"})
        for i in range(11)
    ]
    vector_store.upsert("c", points)
    assert vector_store.list_collections() == ["c", "d"]
    assert sorted(pid for pid, _, _ in vector_store.scroll("c", "v", batch=3)) == sorted(p.point_id for p in points)
    assert vector_store.count("c") == 11 and vector_store.count("c", where_filter({"label": "L1"})) == 5
    assert vector_store.find_ids("c", "path", "/4") == [point_id_for("4")]
    got = vector_store.get_points("c", [point_id_for("3"), point_id_for("nope")], "v")
    assert list(got) == [point_id_for("3")] and got[point_id_for("3")][1]["label"] == "L1"
    info = vector_store.info("c")
    assert (info.name, info.points, info.specs, dict(info.catalog.versions)) == ("c", 11, {"v": SPEC}, {"v": "tiny:1"})
    with pytest.raises(StoreError, match="no collection 'zzz'"):
        vector_store.vector_specs("zzz")


def test_an_id_filter_restricts_a_batch_row_by_row(vector_store: VectorStore) -> None:
    vector_store.ensure_collection("c", [SPEC])
    vector_store.upsert("c", _points())
    a, b = point_id_for("a"), point_id_for("b")
    rows = np.array([[1, 0, 0], [1, 0, 0]], dtype=np.float32)
    hits = vector_store.query("c", SPEC, rows, 3, [only_ids([b]), only_ids([a, b])])
    assert [[h.label for h in row] for row in hits] == [["B"], ["A", "B"]]
    assert vector_store.query("c", SPEC, rows[:1], 3, only_ids([])) == [[]]
