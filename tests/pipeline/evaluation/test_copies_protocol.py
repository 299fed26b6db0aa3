"""Copy-detection protocol without a store: scoring hand-made hits (ties, negatives); reading layouts: test_copy_set."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.records import Hit
from pipeline.evaluation.protocols.copies import copy_metrics
from pipeline.evaluation.protocols.copy_set import CopyQuery, CopySet


def _hit(path: Path, score: float) -> Hit:
    return Hit(0, score, f"id-{path.name}", {"path": str(path.resolve())})


def _copy_set(tmp_path: Path, queries: list[CopyQuery]) -> CopySet:
    return CopySet(tmp_path, (str(tmp_path / "r0.png"), str(tmp_path / "r1.png")), tuple(queries))


def test_a_tie_at_rank_1_is_a_miss_even_when_the_engine_lists_the_original_first(tmp_path: Path) -> None:
    # Regression (issue 18): recall@1 read the engine's first hit, so tied phash scores flipped it between runs.
    r0, r1 = tmp_path / "r0.png", tmp_path / "r1.png"
    queries = [CopyQuery("q0", str(r0), "crop"), CopyQuery("q1", str(r1), "flip")]
    ranked = {"q0": [_hit(r0, 0.8), _hit(r1, 0.8)], "q1": [_hit(r1, 0.9), _hit(r0, 0.2)]}
    metrics = copy_metrics(_copy_set(tmp_path, queries), ranked, k=2)
    assert metrics["recall_at_1"] == 0.5 and metrics["recall_at_1_crop"] == 0.0 and metrics["recall_at_1_flip"] == 1.0


def test_the_extra_hit_shows_a_tie_beyond_k(tmp_path: Path) -> None:
    # k = 1 pools one prediction per query, but the k+1-th hit still decides whether the original was strictly first.
    r0, r1 = tmp_path / "r0.png", tmp_path / "r1.png"
    ranked = {"q0": [_hit(r0, 0.8), _hit(r1, 0.8)]}
    metrics = copy_metrics(_copy_set(tmp_path, [CopyQuery("q0", str(r0), "crop")]), ranked, k=1)
    assert metrics["micro_ap"] == 1.0 and metrics["recall_at_1"] == 0.0


def test_negative_queries_count_as_false_positives_in_micro_ap(tmp_path: Path) -> None:
    # DISC21: a query with no reference has no ground truth, but its predictions are pooled. Pooled, best first:
    # (0.95, negative → r1: wrong), (0.9, q0 → r0: right) → precision 1/2 at the only recall step 1: µAP 0.5.
    r0, r1 = tmp_path / "r0.png", tmp_path / "r1.png"
    queries = [CopyQuery("q0", str(r0), "crop"), CopyQuery("n0", "", "")]
    ranked = {"q0": [_hit(r0, 0.9)], "n0": [_hit(r1, 0.95)]}
    metrics = copy_metrics(_copy_set(tmp_path, queries), ranked, k=1)
    assert metrics["micro_ap"] == pytest.approx(0.5) and metrics["recall_at_1"] == 1.0
    alone = copy_metrics(_copy_set(tmp_path, queries[:1]), {"q0": ranked["q0"]}, k=1)
    assert alone["micro_ap"] == 1.0
