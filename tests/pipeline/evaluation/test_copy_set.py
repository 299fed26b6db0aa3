"""Reading any copy benchmark layout without a store: DISC21-like ids, negatives, Parquet, refused ground truths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from pipeline.core.errors import DatasetError
from pipeline.evaluation.protocols.copy_set import CopyLayout, load_copy_set


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    small = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(small).resize((24, 20)).save(path)


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
