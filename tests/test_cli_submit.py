"""Submissions and fusion through the CLI (CliRunner, embedded store, the weight-free phash:8 + phash:4)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from fakes import write_noise_images, write_tll
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
FUSED = ["--encoder", "phash:8,phash:4", "--workers", "0", "--no-progress"]


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", str(tmp_path / "qdrant")]


@pytest.fixture
def tll_root(tmp_path: Path) -> Path:
    write_tll(tmp_path / "tll", n_train=20, n_test=4, n_candidates=3)
    return tmp_path / "tll"


def test_submit_tll_end_to_end(tll_root: Path, tmp_path: Path, store_args: list[str]) -> None:
    out = tmp_path / "sub" / "tll.csv"
    args = ["submit", "tll", "--dataset", str(tll_root), *FUSED, "--weights", "0.66,0.34", "--n-candidates", "3"]
    result = runner.invoke(app, [*args, "--validate", "--out", str(out), *store_args])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 4 rows × 3 candidates (checked against" in result.output
    assert "validation (4 held-out tasks): top1 " in result.output and "top2[phash:4]" in result.output
    frame = pl.read_csv(out, infer_schema=False)
    assert frame.columns == ["left", "c0", "c1", "c2"] and frame["left"].to_list() == ["q000", "q001", "q002", "q003"]
    calibration = json.loads((tmp_path / "sub" / "tll.calibration.json").read_text())
    assert calibration["encoders"] == ["phash:8", "phash:4"] and calibration["weights"] == pytest.approx([0.66, 0.34])
    collections = runner.invoke(app, ["collections", *store_args])
    assert "tll-phash-8-phash-4" in collections.output and "phash:8 [phash:1], phash:4 [phash:1]" in collections.output


def test_submit_refuses_a_sample_mismatch_in_one_line(tll_root: Path, tmp_path: Path, store_args: list[str]) -> None:
    lines = (tll_root / "sample-submission.csv").read_text().splitlines()
    (tll_root / "sample-submission.csv").write_text("\n".join(lines[:-1]) + "\n")
    out = tmp_path / "tll.csv"
    result = runner.invoke(app, ["submit", "tll", "--dataset", str(tll_root), *FUSED, "--out", str(out), *store_args])
    assert result.exit_code == 2 and not out.exists()
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        f"error: submission has 4 rows, {tll_root / 'sample-submission.csv'} has 3"
    ]


@pytest.mark.parametrize("weights", ["1,3", "fit"])
def test_eval_candidates_fuses_two_encoders(
    weights: str, tll_root: Path, tmp_path: Path, store_args: list[str]
) -> None:
    args = ["eval", "candidates", "--dataset", str(tll_root), *FUSED, "--weights", weights, "--n-candidates", "3"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "ev"), *store_args])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["encoder"] == "phash:8,phash:4" and metrics["collection"] == "tll-phash-8-phash-4"
    assert {"top1", "top2", "top1[phash:8]", "top2[phash:4]"} <= set(metrics["metrics"])
    calibration = json.loads((tmp_path / "ev" / "calibration.json").read_text())
    assert calibration["split"]["pairs"] == 16 and calibration["weights_fitted"] == (weights == "fit")
    assert metrics["settings"]["weights"] == calibration["weights"]
    if weights != "fit":
        assert calibration["weights"] == [0.25, 0.75]


def test_ingest_two_encoders_then_fused_query(tmp_path: Path, store_args: list[str]) -> None:
    paths = write_noise_images(tmp_path / "imgs", 6, size=(64, 64))
    args = ["ingest", str(tmp_path / "imgs"), "-c", "two", *FUSED, "--report", str(tmp_path / "r.csv")]
    result = runner.invoke(app, [*args, *store_args])
    assert result.exit_code == 0, result.output
    assert "phash:8: seen 6 · ingested 6" in result.output and "phash:4: seen 6 · ingested 6" in result.output
    query = ["query", str(paths[3]), "-c", "two", "-e", "phash:8,phash:4", "-k", "2", "--json", *store_args]
    result = runner.invoke(app, query)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert Path(row["hits"][0]["path"]).name == paths[3].name and len(row["hits"]) == 2
    single = runner.invoke(app, ["query", str(paths[3]), "-c", "two", *store_args])
    assert single.exit_code == 2 and "comma-separated to fuse them" in single.output


def test_protocols_without_fusion_take_one_encoder(store_args: list[str]) -> None:
    result = runner.invoke(app, ["eval", "pairs", "-e", "phash:8,phash:4", "--dataset", ".", *store_args])
    assert result.exit_code == 2 and "one encoder here" in result.output
