"""`lookalike eval` end to end on the shared benchmark datasets (skipped where they are absent), with phash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

DATA = Path(os.environ.get("LOOKALIKE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
runner = CliRunner()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path} (set LOOKALIKE_DATA)")
    return path


def _eval(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out"
    common = ["-e", "phash:8", "--workers", "0", "--no-progress", "--store", str(tmp_path / "q"), "--out", str(out)]
    result = runner.invoke(app, ["eval", *args, *common])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file()
    return json.loads((out / "metrics.json").read_text())


def test_candidates_on_tll_validation_tasks(tmp_path: Path) -> None:
    root = _need(DATA / "tll")
    metrics = _eval(tmp_path, "candidates", "--dataset", str(root), "--val-fraction", "0.05")
    assert metrics["counts"]["tasks"] == 80 and metrics["protocol"] == "candidates"
    m = metrics["metrics"]
    assert 0.0 <= m["top1"] <= m["top2"] <= m["top5"] <= 1.0 and m["chance_top2"] == pytest.approx(0.1)


def test_oneshot_on_omniglot_is_repeatable_and_reuses_the_collection(tmp_path: Path) -> None:
    root = _need(DATA / "omniglot" / "images_background_small2")
    first = _eval(tmp_path, "oneshot", "--dataset", str(root), "--tasks", "30", "--n-way", "5")
    second = _eval(tmp_path, "oneshot", "--dataset", str(root), "--tasks", "30", "--n-way", "5")
    assert first["counts"]["ingested"] > 0 and second["counts"]["ingested"] == 0
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["top1"] > 0.2  # phash beats 5-way chance on handwriting


def test_oneshot_fuses_an_ensemble_and_scores_each_member(tmp_path: Path) -> None:
    root = _need(DATA / "omniglot" / "images_background_small2")
    out, store = tmp_path / "out", str(tmp_path / "q")
    task = ["eval", "oneshot", "--dataset", str(root), "--tasks", "30", "--n-way", "5", "--workers", "0"]
    args = [*task, "--no-progress", "--store", store, "--out", str(out), "-e", "phash:8,phash:16"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    m = metrics["metrics"]
    assert "top1[phash:8]" in m and "top1[phash:16]" in m and 0.2 < m["top1"] <= 1.0
    assert metrics["settings"]["weights"] == [0.5, 0.5]
    refused = runner.invoke(app, [*task, "--store", store, "-e", "phash:8,phash:16", "--weights", "fit"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output and "weights 'fit'" in refused.output
    assert "(set by --weights)" in refused.output


def test_oneshot_hubness_correction_is_recorded_and_a_negative_one_refused(tmp_path: Path) -> None:
    root = _need(DATA / "omniglot" / "images_background_small2")
    task = ["oneshot", "--dataset", str(root), "--tasks", "30", "--n-way", "5"]
    plain = _eval(tmp_path, *task)
    corrected = _eval(tmp_path, *task, "--hubness", "0.5")
    assert plain["settings"]["hubness"] == 0.0 and corrected["settings"]["hubness"] == 0.5
    assert corrected["counts"]["ingested"] == 0 and corrected["metrics"]["top1"] > 0.2
    assert corrected["metrics"]["mrr"] != plain["metrics"]["mrr"]
    refused = runner.invoke(app, ["eval", *task, "--hubness", "-1", "--store", str(tmp_path / "q")])
    assert refused.exit_code == 2 and "Traceback" not in refused.output and "--hubness" in refused.output


def test_missing_dataset_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "pairs", "--dataset", str(tmp_path / "nope"), "-e", "phash"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nope" in result.output


@pytest.mark.slow
def test_pairs_on_lfw_view1(tmp_path: Path) -> None:
    root = _need(DATA / "lfw")
    metrics = _eval(tmp_path, "pairs", "--dataset", str(root))
    assert metrics["counts"]["train_pairs"] == 2200 and metrics["counts"]["test_pairs"] == 1000
    assert 0.5 < metrics["metrics"]["roc_auc"] < 1.0
