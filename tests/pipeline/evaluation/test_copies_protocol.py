"""Copy-detection protocol without a store: reading any benchmark layout; scoring hand-made hits (ties, negatives)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from pipeline.core.errors import DatasetError
from pipeline.core.records import Hit
from pipeline.evaluation.protocols.copies import CopyLayout, CopyQuery, CopySet, copy_metrics, load_copy_set


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    small = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(small).resize((24, 20)).save(path)


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


@pytest.fixture
def disc21_like(tmp_path: Path) -> Path:
    """DISC21's shape: ids (file stems) in the ground truth, a reference column, no transforms, distractor queries."""
    root = tmp_path / "disc"
    for i in range(3):
        _image(root / "refs" / f"R{i:06d}.jpg", i)
    for i in range(4):
        _image(root / "qs" / f"Q{i:05d}.jpg", 10 + i)
    truth = {
        "query_id": ["Q00000", "Q00001", "Q00002", "Q99999", "Q00003"],
        "reference_id": ["R000000", "R000002", "", "R000001", "R777777"],
    }
    pl.DataFrame(truth).write_csv(root / "gt.csv")
    return root


def test_disc21_layout_by_ids_with_missing_rows_counted(disc21_like: Path) -> None:
    layout = CopyLayout(Path("refs"), Path("qs"), Path("gt.csv"), "query_id", "reference_id")
    copy_set = load_copy_set(disc21_like, layout)
    by_name = {Path(q.path).name: Path(q.reference).name if q.reference else "" for q in copy_set.queries}
    assert by_name == {"Q00000.jpg": "R000000.jpg", "Q00001.jpg": "R000002.jpg", "Q00002.jpg": ""}
    assert copy_set.missing_queries == ("Q99999",) and copy_set.missing_references == ("Q00003 → R777777",)
    assert len(copy_set.references) == 3 and not copy_set.transforms


def test_queries_the_ground_truth_does_not_name_are_negatives(disc21_like: Path) -> None:
    pl.DataFrame({"q": ["qs/Q00000.jpg"], "r": [str((disc21_like / "refs" / "R000000.jpg").resolve())]}).write_csv(
        disc21_like / "pairs_only.csv"
    )
    layout = CopyLayout(Path("refs"), disc21_like / "qs", Path("pairs_only.csv"), "q", "r")
    copy_set = load_copy_set(disc21_like, layout)  # a path relative to the benchmark, an absolute one
    assert sum(1 for q in copy_set.queries if q.reference) == 1 and len(copy_set.queries) == 4


def test_parquet_ground_truth_and_an_explicit_transform_column(disc21_like: Path) -> None:
    frame = pl.DataFrame({"query": ["Q00000.jpg"], "reference": ["R000000.jpg"], "edit": ["crop"]})
    frame.write_parquet(disc21_like / "gt.parquet")
    layout = CopyLayout(Path("refs"), Path("qs"), Path("gt.parquet"), transform_column="edit")
    copy_set = load_copy_set(disc21_like, layout)
    assert copy_set.transforms and copy_set.queries[0].transform == "crop"


@pytest.mark.parametrize(
    ("truth", "match"),
    [
        ({"query": ["Q00000", "Q00000"], "reference": ["R000000", "R000001"]}, "more than one row"),
        ({"query": ["Q00000", "nope"], "reference": ["", "R000001"]}, "no row pairs a query"),
        ({"query": ["Q00000"], "ref": ["R000000"]}, r"no column reference \(the reference column\)"),
    ],
)
def test_unusable_ground_truth_is_refused(disc21_like: Path, truth: dict[str, list[str]], match: str) -> None:
    pl.DataFrame(truth).write_csv(disc21_like / "bad.csv")
    with pytest.raises(DatasetError, match=match):
        load_copy_set(disc21_like, CopyLayout(Path("refs"), Path("qs"), Path("bad.csv")))
