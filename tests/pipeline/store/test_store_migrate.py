"""`store migrate`: old stores (qdrant-client local mode) move into the embedded engine, point for point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient
from typer.testing import CliRunner

from cli import app
from pipeline.core.config import StoreConfig
from pipeline.core.errors import StoreError
from pipeline.store import Catalog, Point, VectorSpec, VectorStore, point_id_for
from pipeline.store.edge import EdgeBackend
from pipeline.store.migrate import migrate_legacy
from pipeline.store.server import ServerBackend

FACES = [VectorSpec("dlib", 4, "cosine"), VectorSpec("phash-8", 8, "manhattan")]
LOCAL = VectorSpec("local", 3, "dot", multivector=True)


def _old_store(folder: Path, n: int = 30) -> dict[str, dict]:
    """An old-format folder as earlier lookalike versions wrote it: two collections, one with a point missing a
    vector (no face) and one of multivectors. Returns what each point holds, by collection and id."""
    rng = np.random.default_rng(0)
    old = VectorStore(ServerBackend(QdrantClient(path=str(folder)), "old", remote=False))
    old.ensure_collection("faces", FACES, {"dlib": "dlib", "phash-8": "phash:8"}, {"dlib": "dlib:1", "phash-8": "p:1"})
    old.ensure_collection("chars", [LOCAL], {"local": "siamese:local@x"}, {})
    faces = [
        Point(
            point_id_for(str(i)),
            {"phash-8": rng.integers(0, 2, 8).astype(np.float32)} | ({} if i == 0 else {"dlib": rng.normal(size=4)}),
            {"path": f"/img/{i}.jpg", "label": f"person_{i % 3}", "duplicate_paths": [f"/copy/{i}.jpg"]},
            ("dlib",) if i == 0 else (),
        )
        for i in range(n)
    ]
    chars = [
        Point(point_id_for(f"c{i}"), {"local": rng.normal(size=(5, 3))}, {"path": f"/c/{i}.png"}) for i in range(7)
    ]
    old.upsert("faces", faces)
    old.upsert("chars", chars)
    expected = {name: _contents(old, name, specs) for name, specs in (("faces", FACES), ("chars", [LOCAL]))}
    old.close()
    return expected


def _contents(store: VectorStore, name: str, specs: list[VectorSpec]) -> dict:
    records = store.backend.retrieve(name, [pid for pid, _, _ in store.scroll(name)], True, [s.name for s in specs])
    return {r.point_id: ({k: v.tolist() for k, v in r.vectors.items()}, dict(r.payload)) for r in records}


def test_migrate_moves_every_point_catalog_and_vector_then_removes_the_old_files(tmp_path: Path) -> None:
    expected = _old_store(tmp_path / "s")
    report = migrate_legacy(tmp_path / "s", progress=False)
    assert [(c.name, c.points) for c in report.collections] == [("chars", 7), ("faces", 30)] and report.removed_old
    assert not (tmp_path / "s" / "meta.json").exists() and not (tmp_path / "s" / "collection").exists()
    with VectorStore.open(StoreConfig(path=str(tmp_path / "s"))) as store:
        assert store.kind == "edge" and store.list_collections() == ["chars", "faces"]
        assert store.vector_specs("faces") == {s.name: s for s in FACES} and store.vector_specs("chars") == {
            "local": LOCAL
        }
        assert store.encoder_specs("faces") == {"dlib": "dlib", "phash-8": "phash:8"}
        assert store.encoder_versions("faces") == {"dlib": "dlib:1", "phash-8": "p:1"}
        for name, specs in (("faces", FACES), ("chars", [LOCAL])):
            got = _contents(store, name, specs)
            assert got.keys() == expected[name].keys()
            for pid, (vectors, payload) in expected[name].items():
                assert got[pid][1] == payload and got[pid][0].keys() == vectors.keys()
                for key, vector in vectors.items():  # dlib is cosine: compared as scored, by direction
                    want = np.asarray(vector) / (np.linalg.norm(vector) if key == "dlib" else 1.0)
                    np.testing.assert_allclose(got[pid][0][key], want, atol=1e-6)
        assert store.present_ids("faces", [point_id_for("0")], "dlib") == {point_id_for("0")}  # no face, recorded


def test_an_interrupted_migration_is_finished_by_running_it_again(tmp_path: Path) -> None:
    _old_store(tmp_path / "s")
    edge = EdgeBackend(tmp_path / "s")  # a first run that died after copying part of one collection
    edge.create_collection("faces", FACES, Catalog({"dlib": "dlib"}))
    edge.upsert("faces", [Point(point_id_for("5"), {"dlib": np.ones(4)}, {"path": "stale"})])
    edge.close()
    report = migrate_legacy(tmp_path / "s", keep_old=True, progress=False)
    assert {c.name: c.points for c in report.collections} == {"chars": 7, "faces": 30}
    assert (tmp_path / "s" / "meta.json").exists()  # --keep-old
    with VectorStore(EdgeBackend(tmp_path / "s")) as store:
        assert store.get_points("faces", [point_id_for("5")], "dlib")[point_id_for("5")][1]["path"] == "/img/5.jpg"


def test_migrate_refuses_an_existing_collection_with_other_vectors_and_keeps_the_old_files(tmp_path: Path) -> None:
    _old_store(tmp_path / "s")
    edge = EdgeBackend(tmp_path / "s")
    edge.create_collection("faces", [VectorSpec("clip", 5, "cosine")], Catalog())
    edge.close()
    with pytest.raises(StoreError, match="'faces' was made with encoder"):
        migrate_legacy(tmp_path / "s", progress=False)
    assert (tmp_path / "s" / "meta.json").exists() and (tmp_path / "s" / "collection" / "faces").is_dir()


def test_migrate_with_nothing_to_migrate_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no collections in the old format"):
        migrate_legacy(tmp_path / "empty", progress=False)


def test_cli_refuses_an_old_store_then_migrates_it_and_lists_its_collections(tmp_path: Path) -> None:
    _old_store(tmp_path / "s")
    runner = CliRunner()
    refused = runner.invoke(app, ["collections", "--store", str(tmp_path / "s")])
    assert refused.exit_code == 2 and "lookalike store migrate --store" in refused.output
    migrated = runner.invoke(app, ["store", "migrate", "--store", str(tmp_path / "s"), "--no-progress"])
    assert migrated.exit_code == 0, migrated.output
    assert "migrated faces: 30 points, every one checked" in migrated.output and "old files removed" in migrated.output
    listed = runner.invoke(app, ["collections", "--store", str(tmp_path / "s")])
    assert listed.exit_code == 0, listed.output
    [chars, faces] = listed.output.strip().splitlines()
    assert chars.split()[:4] == ["chars", "7", "points", "edge,"] and "exact scan" in chars
    assert faces.split()[:4] == ["faces", "30", "points", "edge,"] and "dlib [dlib:1], phash:8 [p:1]" in faces


def test_migrate_leaves_an_old_store_locked_by_another_process_alone(tmp_path: Path) -> None:
    _old_store(tmp_path / "s")
    holder = QdrantClient(path=str(tmp_path / "s"))  # an old lookalike still running on the folder
    try:
        with pytest.raises(StoreError):
            migrate_legacy(tmp_path / "s", progress=False)
    finally:
        holder.close()
    assert (tmp_path / "s" / "meta.json").exists()
