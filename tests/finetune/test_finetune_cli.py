"""`lookalike finetune` with CliRunner on tiny synthetic folders; the result is used by `ingest` and `eval copies`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from finetune_fakes import write_photo_folder
from PIL import Image
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
    assert Image.open(out / "curves.png").size == (900, 350)  # loss and validation side by side


def test_val_fraction_0_trains_on_everything_and_keeps_the_last_epoch(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "refit"
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(out), *TINY, "--epochs", "2"]
    result = runner.invoke(app, [*args, "--val-fraction", "0", "--patience", "1", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "no validation: kept epoch 2 of 2" in result.output and "30 examples, 6 classes" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["metrics"] == {} and saved["training"]["val_fraction"] == 0.0
    history = json.loads((out / "history.json").read_text())  # strict JSON: no NaN
    assert [row["metric"] for row in history] == [None, None, None]
    assert Image.open(out / "curves.png").size == (450, 350)  # the loss panel alone: no empty validation panel


def test_bad_data_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["finetune", "--data", "zip:/nowhere", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "error: bad training data 'zip:/nowhere': expected KIND:PATH" in result.output
    assert result.output.rstrip().endswith("(set by --data)")


def test_bad_loss_is_one_line_and_exit_2(class_folder: Path, tmp_path: Path) -> None:
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(tmp_path / "m"), "--loss", "hinge"]
    result = runner.invoke(app, args)
    # An Enum choice: typer refuses it before any work, naming the option, the value and the choices.
    assert result.exit_code == 2 and "'--loss'" in result.output and "'hinge' is not one of" in result.output
    assert "'supcon-local'" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--mode", "--loss", "--mining", "--crop"])
def test_choice_options_list_their_choices_and_refuse_others(option: str, tmp_path: Path) -> None:
    shown = runner.invoke(app, ["finetune", "--help"], terminal_width=200)
    choices = {
        "--mode": "<head|cnn>",
        "--loss": "<contrastive|triplet|bce|supcon|supcon-local>",
        "--mining": "<batch-hard|semihard|all>",
        "--crop": "<none|ink>",
    }
    assert f"{option} {choices[option]}" in shown.output
    result = runner.invoke(app, ["finetune", "--data", "folder:x", "--out", str(tmp_path / "m"), option, "HEAD"])
    assert result.exit_code == 2 and f"'{option}'" in result.stderr and "'HEAD' is not one of" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_copies_finetune_then_eval_copies_with_the_result(tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos", 16)
    out = tmp_path / "copy-model"
    args = ["finetune", "--data", f"copies:{tmp_path / 'photos'}", "--out", str(out), *TINY, "--loss", "triplet"]
    result = runner.invoke(app, [*args, "--copies-per-image", "2", "--steps-per-epoch", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "best copy_recall1" in result.output and "13 classes" in result.output
    bench = tmp_path / "bench"
    counts = ["--originals", "3", "--copies", "2", "--distractors", "4", "--negatives", "1"]
    made = runner.invoke(app, ["bench", "copies", str(tmp_path / "photos"), "--out", str(bench), *counts])
    assert made.exit_code == 0, made.output
    evaluate = ["eval", "copies", str(bench), "-e", f"siamese@{out}", "--workers", "0", "--no-progress"]
    scored = runner.invoke(app, [*evaluate, "--store", str(tmp_path / "qdrant"), "--out", str(tmp_path / "eval")])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["recall_at_1"] <= 1.0


def test_copies_refuses_head_mode_in_one_line(tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos", 4)
    args = ["finetune", "--data", f"copies:{tmp_path / 'photos'}", "--out", str(tmp_path / "m"), "--mode", "head"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "use mode cnn (set by --mode)" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_synthetic_classes_in_head_mode_are_refused_in_one_line(class_folder: Path, tmp_path: Path) -> None:
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(tmp_path / "m"), "--mode", "head"]
    result = runner.invoke(app, [*args, "--synthetic-classes", "10"])
    assert result.exit_code == 2 and "--synthetic-classes" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_trained_cnn_serves_as_a_late_interaction_encoder(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(out), *TINY, "--no-progress"]
    assert runner.invoke(app, [*args, "--device", "cpu"]).exit_code == 0
    store = ["--store", str(tmp_path / "qdrant"), "--report", str(tmp_path / "report.csv")]
    local = f"siamese:local@{out}"
    ingest = ["ingest", str(class_folder), "-c", "late", "-e", local, "--workers", "0", "--no-progress", *store]
    ingested = runner.invoke(app, ingest)
    assert ingested.exit_code == 0 and "ingested 30" in ingested.output, ingested.output
    image = sorted(class_folder.rglob("*.png"))[4]
    found = runner.invoke(app, ["query", str(image), "-c", "late", "-k", "3", "--json", *store[:2]])
    assert found.exit_code == 0, found.output
    [row] = json.loads(found.output)
    top, second = row["hits"][0], row["hits"][1]
    assert Path(top["path"]).name == image.name and top["score"] == pytest.approx(2.0, abs=1e-4)  # 1 + 1: itself
    assert second["score"] < top["score"]
    dedup_args = ["dedup", "-c", "late", "--threshold", "1.5", "--out", str(tmp_path / "dd"), *store[:2]]
    dedup = runner.invoke(app, dedup_args)
    assert dedup.exit_code != 0 and "multivector" in dedup.output and "Traceback" not in dedup.output


def test_unknown_crop_is_refused_in_one_line(class_folder: Path, tmp_path: Path) -> None:
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(tmp_path / "m"), *TINY, "--crop", "box"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "'--crop'" in result.output
    assert "'box' is not one of 'none', 'ink'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_no_normalize_trains_a_free_plane(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "plane"
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(out), *TINY, "--embedding-dim", "2"]
    result = runner.invoke(app, [*args, "--no-normalize", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["normalize"] is False and saved["distance"] == "euclid" and saved["embedding_dim"] == 2


@pytest.mark.parametrize("loss", ["bce", "supcon", "supcon-local"])
def test_no_normalize_is_refused_for_losses_on_unit_vectors(class_folder: Path, tmp_path: Path, loss: str) -> None:
    args = ["finetune", "--data", f"folder:{class_folder}", "--out", str(tmp_path / "m"), *TINY, "--loss", loss]
    result = runner.invoke(app, [*args, "--no-normalize"])
    assert result.exit_code == 2 and f"loss {loss} is defined on unit vectors" in result.output
    assert result.output.rstrip().endswith("(set by --normalize)") and not (tmp_path / "m").exists()
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "--no-normalize" in runner.invoke(app, ["finetune", "--help"], terminal_width=200).output
