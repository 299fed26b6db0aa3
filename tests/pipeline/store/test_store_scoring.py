"""Qdrant's scoring rules, written once: the raw-score conversion, and the client-side scores against each engine's."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.store import Point, VectorSpec, VectorStore, only_ids, point_id_for
from pipeline.store.scoring import score_matrix, to_score


def test_manhattan_scores_are_fraction_of_equal_bits() -> None:
    assert to_score("manhattan", 16.0, 64) == pytest.approx(0.75)
    assert to_score("euclid", 0.5, 8) == pytest.approx(-0.5)
    assert to_score("cosine", 0.3, 8) == pytest.approx(0.3)


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclid", "manhattan"])
def test_score_matrix_matches_what_the_engine_reports(distance: str, vector_store: VectorStore) -> None:
    """Oracle: the client-side similarities equal the scores Qdrant's own queries report."""
    spec = VectorSpec("v", 6, distance)  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 2, (7, 6)).astype(np.float32) if distance == "manhattan" else rng.normal(size=(7, 6))
    ids = [point_id_for(str(i)) for i in range(7)]
    vector_store.ensure_collection("d", [spec])
    vector_store.upsert("d", [Point(pid, {"v": row}) for pid, row in zip(ids, raw, strict=True)])
    stored = np.stack([np.asarray(vector_store.get_points("d", [pid], "v")[pid][0]) for pid in ids])  # as kept
    hits = vector_store.query("d", spec, stored, 7, only_ids(ids))
    expected = np.array([[{h.point_id: h.score for h in row}[pid] for pid in ids] for row in hits])
    np.testing.assert_allclose(score_matrix(stored, stored, spec), expected, rtol=1e-5, atol=1e-5)
