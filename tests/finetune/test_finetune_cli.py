"""`lookalike finetune` with CliRunner on a tiny synthetic folder; the result is used by `ingest` as siamese@DIR."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli import app

runner = CliRunner()
TINY = ["--mode", "cnn", "--input-size", "12", "--width", "4", "--blocks", "1,1", "--epochs", "1", "--batch-size", "8"]


def test_finetune_then_ingest_with_the_result(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["finetune", "--data", f"folder:{class_folder}", "--out", str(out), *TINY, "--no-progress", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "best oneshot" in result.output and f"siamese@{out.resolve()}" in result.output
    store = ["--store", str(tmp_path / "qdrant"), "--report", str(tmp_path / "report.csv")]
    ingested = runner.invoke(
        app,
        ["ingest", str(class_folder), "-c", "chars", "-e", f"siamese@{out}", "--workers", "0", "--no-progress", *store],
    )
    assert ingested.exit_code == 0, ingested.output
    assert "ingested 30" in ingested.output


def test_bad_data_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["finetune", "--data", "zip:/nowhere", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "error: bad --data 'zip:/nowhere': expected KIND:PATH" in result.output


def test_bad_loss_is_one_line_and_exit_2(class_folder: Path, tmp_path: Path) -> None:
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(tmp_path / "m"), "--loss", "hinge"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--loss 'hinge'" in result.output
