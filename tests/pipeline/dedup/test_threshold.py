"""Threshold calibration on synthetic scores with a hand-checked answer, and the pairs-file reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import LookalikeError
from pipeline.dedup.threshold import calibrate_threshold, read_labelled_pairs


def test_lowest_threshold_reaching_precision() -> None:
    # descending: 0.99 T, 0.95 T, 0.90 F, 0.85 T, 0.80 T, 0.70 F, 0.60 F, 0.50 T
    scores = [0.99, 0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.50]
    same = [1, 1, 0, 1, 1, 0, 0, 1]
    # precision at >= 0.80 is 4/5 = 0.8; at >= 0.50 it is 5/8 < 0.8; so P=0.8 → threshold 0.80, recall 4/5
    cal = calibrate_threshold(scores, np.array(same, dtype=bool), 0.8)
    assert cal.threshold == pytest.approx(0.80) and cal.recall == pytest.approx(0.8)
    assert cal.precision == pytest.approx(0.8) and cal.same_pairs == 5 and cal.unscored == 0
    strict = calibrate_threshold(scores, np.array(same, dtype=bool), 1.0)
    assert strict.threshold == pytest.approx(0.95) and strict.recall == pytest.approx(0.4)


def test_calibration_on_a_seeded_score_set() -> None:
    rng = np.random.default_rng(0)
    same = rng.random(2000) < 0.3
    scores = np.where(same, rng.normal(0.9, 0.05, 2000), rng.normal(0.6, 0.1, 2000))
    cal = calibrate_threshold(scores, same, 0.99)
    accepted = scores >= cal.threshold
    assert same[accepted].mean() >= 0.99 and cal.recall == pytest.approx(same[accepted].sum() / same.sum())
    lower = scores[scores < cal.threshold].max()  # the next lower threshold adds more, and loses precision or recall
    assert same[scores >= lower].mean() < 0.99 or same[scores >= lower].sum() == same[accepted].sum()


def test_unscored_pairs_are_left_out_and_counted() -> None:
    cal = calibrate_threshold([0.9, np.nan, 0.1], np.array([True, True, False]), 0.9)
    assert cal.unscored == 1 and cal.recall == 1.0 and cal.pairs == 3


def test_unreachable_precision_is_a_clear_error() -> None:
    with pytest.raises(LookalikeError, match="no threshold reaches"):
        calibrate_threshold([0.9, 0.8], np.array([False, True]), 1.0)


def test_read_labelled_pairs_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    (tmp_path / "pairs.csv").write_text("left,right,same\na.jpg,/abs/b.jpg,1\na.jpg,c.jpg,false\n")
    pairs = read_labelled_pairs(tmp_path / "pairs.csv")
    assert [(Path(p.left).name, p.right, p.same) for p in pairs] == [
        ("a.jpg", "/abs/b.jpg", True),
        ("a.jpg", "c.jpg", False),
    ]
    assert Path(pairs[0].left).is_absolute()
    (tmp_path / "bad.csv").write_text("left,right,same\na,b,maybe\n")
    with pytest.raises(LookalikeError, match="row 2"):
        read_labelled_pairs(tmp_path / "bad.csv")
