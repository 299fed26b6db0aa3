"""`build_map` over a real store: the drawn points, the seeded and capped sample, 2-D collections as they are, and
the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from map_collection import ENCODER, VECTOR, Synthetic, make_collection

from pipeline.core.errors import LookalikeError, StoreError
from pipeline.maps.build import MapConfig, build_map
from pipeline.maps.layout import Method
from pipeline.maps.sample import choose
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for


def test_pca_map_draws_every_point_with_its_path_and_label(synthetic: Synthetic, vector_store: VectorStore) -> None:
    emap = build_map(vector_store, "syn", None, MapConfig(method="pca"))
    assert (emap.method, emap.encoder, emap.vector) == (Method.PCA, ENCODER, VECTOR)
    assert (emap.total, emap.sampled) == (24, False)
    by_id = {p.point_id: p for p in emap.points}
    assert set(by_id) == set(synthetic.ids)
    for pid, path, label in zip(synthetic.ids, synthetic.paths, synthetic.labels, strict=True):
        assert (by_id[pid].path, by_id[pid].label) == (path, label)
    coords = np.array([(p.x, p.y) for p in emap.points])
    assert coords.shape == (24, 2) and np.isfinite(coords).all()
    assert emap.classes == ["a", "b", "c"] and emap.describe() == "24 points"


def test_color_by_another_payload_field(synthetic: Synthetic, vector_store: VectorStore) -> None:
    emap = build_map(vector_store, "syn", ENCODER, MapConfig(method="pca", color_by="group"))
    assert emap.classes == ["g0", "g1"] and emap.color_by == "group"
    missing = build_map(vector_store, "syn", None, MapConfig(method="pca", color_by="nosuch"))
    assert missing.classes == [None]  # drawn in one grey, not refused


def test_sample_is_capped_and_seeded(synthetic: Synthetic, vector_store: VectorStore) -> None:
    first = build_map(vector_store, "syn", None, MapConfig(method="pca", sample=10, seed=1))
    again = build_map(vector_store, "syn", None, MapConfig(method="pca", sample=10, seed=1))
    other = build_map(vector_store, "syn", None, MapConfig(method="pca", sample=10, seed=2))
    ids = [p.point_id for p in first.points]
    assert len(ids) == 10 and len(set(ids)) == 10 and set(ids) <= set(synthetic.ids)
    assert ids == [p.point_id for p in again.points] and ids != [p.point_id for p in other.points]
    assert first.sampled and first.total == 24
    assert first.describe() == "10 of 24 points (random sample, seed 1)"


def test_choose_keeps_order_and_takes_all_under_the_cap() -> None:
    ids = [f"id{i:02d}" for i in range(50)]
    assert choose(ids, 50, 0) == ids and choose(ids[:3], 10, 0) == ids[:3]
    picked = choose(ids, 7, 0)
    assert len(picked) == 7 and picked == sorted(picked) and picked == choose(ids, 7, 0)


def test_a_2d_collection_is_drawn_as_it_is(vector_store: VectorStore, tmp_path: Path) -> None:
    stored = make_collection(vector_store, tmp_path / "i", n=9, dim=2, collection="two")
    emap = build_map(vector_store, "two", None, MapConfig())  # method auto
    assert emap.method is Method.NONE
    got = {p.point_id: (p.x, p.y) for p in emap.points}
    for pid, vector in zip(stored.ids, stored.vectors, strict=True):
        np.testing.assert_allclose(got[pid], vector, rtol=1e-6)


def test_points_without_the_vector_are_left_out(synthetic: Synthetic, vector_store: VectorStore) -> None:
    no_face = Point(point_id_for("no-face"), {}, {"path": "/x/none.png", "label": "a"}, missing=(VECTOR,))
    vector_store.upsert("syn", [no_face])
    emap = build_map(vector_store, "syn", None, MapConfig(method="pca"))
    assert emap.total == 24 and no_face.point_id not in {p.point_id for p in emap.points}


def test_refusals_are_one_line(synthetic: Synthetic, vector_store: VectorStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no collection 'nosuch'"):
        build_map(vector_store, "nosuch", None, MapConfig(method="pca"))
    with pytest.raises(LookalikeError, match="has no vectors from encoder 'clip:x'"):
        build_map(vector_store, "syn", "clip:x", MapConfig(method="pca"))
    with pytest.raises(LookalikeError, match="needs 2-d vectors; these are 8-d"):
        build_map(vector_store, "syn", None, MapConfig(method="none"))
    make_collection(vector_store, tmp_path / "few", n=2, collection="few")
    with pytest.raises(LookalikeError, match=r"'few' .* has 2 points to draw; a pca map needs at least 3"):
        build_map(vector_store, "few", None, MapConfig(method="pca"))
    with pytest.raises(LookalikeError, match="sample size must be ≥ 1"):
        MapConfig(sample=0)


def test_multivector_collection_is_refused(vector_store: VectorStore) -> None:
    spec = VectorSpec("m", 3, "dot", multivector=True)
    vector_store.ensure_collection("multi", [spec], {"m": "late:3"})
    vector_store.upsert("multi", [Point(point_id_for("p"), {"m": np.eye(3, dtype=np.float32)}, {"path": "/p.png"})])
    with pytest.raises(LookalikeError, match=r"stores late:3 as multivectors .* one vector per image"):
        build_map(vector_store, "multi", None, MapConfig(method="pca"))
