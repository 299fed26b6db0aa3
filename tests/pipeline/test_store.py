"""The Qdrant adapter, on embedded stores (the same calls a server gets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import StoreConfig
from pipeline.errors import StoreError
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for, to_score, where_filter

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


def test_collection_records_encoder_and_refuses_another(memory_store: VectorStore) -> None:
    memory_store.ensure_collection("c", [SPEC], {"v": "tiny:thumb8"})
    memory_store.ensure_collection("c", [SPEC])  # same spec again: fine
    assert memory_store.encoder_specs("c") == {"v": "tiny:thumb8"}
    with pytest.raises(StoreError, match="made with encoder"):
        memory_store.ensure_collection("c", [VectorSpec("v", 4, "cosine")])
    with pytest.raises(StoreError, match="made with encoder"):
        memory_store.ensure_collection("c", [VectorSpec("other", 3, "cosine")])


def test_query_ranks_by_similarity_and_filters(memory_store: VectorStore) -> None:
    memory_store.ensure_collection("c", [SPEC])
    memory_store.upsert("c", _points())
    [hits] = memory_store.query("c", SPEC, np.array([[1, 0, 0]], dtype=np.float32), k=3)
    assert [h.label for h in hits] == ["A", "C", "B"]
    assert hits[0].score == pytest.approx(1.0) and hits[0].rank == 1
    [hits] = memory_store.query("c", SPEC, np.array([1, 0, 0], dtype=np.float32), 3, where_filter({"label": "B"}))
    assert [h.label for h in hits] == ["B"]
    not_a = where_filter(None, [point_id_for("a")])
    [hits] = memory_store.query("c", SPEC, np.array([1, 0, 0], dtype=np.float32), 3, not_a)
    assert [h.label for h in hits] == ["C", "B"]


def test_present_ids_counts_missing_vector_records(memory_store: VectorStore) -> None:
    memory_store.ensure_collection("c", [SPEC])
    no_face = Point(point_id_for("d"), {}, {"path": "/d.jpg", "missing_vectors": ["v"]})
    memory_store.upsert("c", [*_points(), no_face])
    ids = [point_id_for(k) for k in "abcdz"]
    assert memory_store.present_ids("c", ids, "v") == set(ids[:4])


def test_manhattan_scores_are_fraction_of_equal_bits() -> None:
    assert to_score("manhattan", 16.0, 64) == pytest.approx(0.75)
    assert to_score("euclid", 0.5, 8) == pytest.approx(-0.5)
    assert to_score("cosine", 0.3, 8) == pytest.approx(0.3)


def test_locked_embedded_store_points_to_server_mode(tmp_path: Path) -> None:
    config = StoreConfig(path=str(tmp_path / "q"))
    with VectorStore.open(config), pytest.raises(StoreError, match="--qdrant-url"):
        VectorStore.open(config)


def test_store_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://q:6333")
    monkeypatch.setenv("QDRANT_API_KEY", "k")
    config = StoreConfig.from_env()
    assert config.is_server and config.api_key == "k"
    assert StoreConfig.from_env(url="http://other:6333").url == "http://other:6333"
