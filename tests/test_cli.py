"""The CLI end to end with typer's CliRunner, on an embedded store and the weight-free phash encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import write_noise_images
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", str(tmp_path / "qdrant")]


def _ingest(source: Path, store_args: list[str], tmp_path: Path) -> Any:
    args = ["ingest", str(source), "-c", "imgs", "-e", "phash", "--workers", "0", "--no-progress"]
    return runner.invoke(app, [*args, "--report", str(tmp_path / "report.csv"), *store_args])


def test_ingest_query_round_trip(tmp_path: Path, store_args: list[str]) -> None:
    paths = write_noise_images(tmp_path / "imgs", 6, size=(64, 64))
    result = _ingest(tmp_path / "imgs", store_args, tmp_path)
    assert result.exit_code == 0, result.output
    assert "ingested 6" in result.output
    result = runner.invoke(app, ["query", str(paths[2]), "-c", "imgs", "-k", "3", "--json", *store_args])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert Path(row["hits"][0]["path"]).name == paths[2].name and row["hits"][0]["score"] == pytest.approx(1.0)
    assert len(row["hits"]) == 3
    again = _ingest(tmp_path / "imgs", store_args, tmp_path)
    assert "ingested 0" in again.output and "already present 6" in again.output


def test_query_csv_with_filter(tmp_path: Path, store_args: list[str]) -> None:
    paths = write_noise_images(tmp_path / "imgs", 6, size=(64, 64))
    _ingest(tmp_path / "imgs", store_args, tmp_path)
    args = ["query", str(paths[0]), "-c", "imgs", "--where", "label=class_1", "--csv", *store_args]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("query,rank,score") and len(lines) == 3
    assert all(line.endswith("class_1,") for line in lines[1:])


def test_a_numeric_label_filter_matches_labels_stored_as_text(tmp_path: Path, store_args: list[str]) -> None:
    """Regression: `--where label=3` became the integer 3 and matched nothing (MNIST's labels are "0" … "9")."""
    write_noise_images(tmp_path / "digits", 6, size=(64, 64))
    for i in range(3):  # label folders class_0 … class_2 → 0 … 2
        (tmp_path / "digits" / f"class_{i}").rename(tmp_path / "digits" / str(i))
    _ingest(tmp_path / "digits", store_args, tmp_path)
    probe = tmp_path / "digits" / "1" / "img_001.png"
    result = runner.invoke(app, ["query", str(probe), "-c", "imgs", "--where", "label=1", "--csv", *store_args])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()[1:]
    assert len(lines) == 2 and all(line.endswith(",1,") for line in lines)


def test_mixed_folder_reports_bad_files(mixed_image_folder: Any, tmp_path: Path, store_args: list[str]) -> None:
    result = _ingest(mixed_image_folder.root, store_args, tmp_path)
    assert result.exit_code == 3, result.output  # finished, but some inputs failed
    assert f"failed {mixed_image_folder.n_broken}" in result.output
    report = (tmp_path / "report.csv").read_text()
    assert all(p.name in report for p in mixed_image_folder.broken)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/no/such/folder", "-c", "x"], "no such file or folder"),
        (["ingest", ".", "-c", "x", "-e", "nosuch"], "unknown encoder 'nosuch'"),
        (["ingest", ".", "-c", "x", "--device", "cuda:7"], "device cuda:7: "),  # then "(set by --device)"
        (["query", "x.png", "-c", "missing"], "no collection 'missing'"),
        (["query", "x.png", "-c", "x", "--where", "oops"], "--where"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], message: str, store_args: list[str], tmp_path: Path) -> None:
    if args[0] == "query" and "oops" in args:
        write_noise_images(tmp_path / "i", 1)
        _ingest(tmp_path / "i", store_args, tmp_path)
        args = ["query", "x.png", "-c", "imgs", "--where", "oops"]
    result = runner.invoke(app, [*args, *store_args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_changed_encoder_version_is_one_line_exit_2(
    tmp_path: Path, store_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_noise_images(tmp_path / "imgs", 2, size=(64, 64))
    assert _ingest(tmp_path / "imgs", store_args, tmp_path).exit_code == 0
    collections = runner.invoke(app, ["collections", *store_args])
    assert "phash:8 [phash:1]" in collections.output
    monkeypatch.setattr("pipeline.encoders.phash.VERSION", "phash:2")  # as if its bit layout changed
    result = _ingest(tmp_path / "imgs", store_args, tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    [error] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "'imgs'" in error and "phash:8" in error and "phash:1" in error and "phash:2" in error
    assert "into a new collection (set by --collection)" in error


def test_encoders_lists_the_families() -> None:
    result = runner.invoke(app, ["encoders"])
    assert result.exit_code == 0
    for family in ("clip", "facenet", "dlib", "phash"):
        assert family in result.output


def test_eval_retrieval_on_a_labelled_folder(tmp_path: Path, store_args: list[str]) -> None:
    write_noise_images(tmp_path / "imgs", 9, size=(64, 64))
    args = ["eval", "retrieval", "-c", "r", "--dataset", str(tmp_path / "imgs"), "-e", "phash", "--workers", "0"]
    result = runner.invoke(app, [*args, "--no-progress", "--out", str(tmp_path / "out"), *store_args])
    assert result.exit_code == 0, result.output
    assert "queries 9 · labels 3 · points 9" in result.output and "precision_at_1" in result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["protocol"] == "retrieval" and metrics["counts"]["ingested"] == 9
    assert 0.0 <= metrics["metrics"]["precision_at_1"] <= 1.0
    assert (tmp_path / "out" / "report.html").read_text().count("<img") > 0


def test_warnings_print_as_one_line() -> None:
    import warnings

    import cli

    text = warnings.formatwarning(UserWarning("collection 'x' records no encoder version"), UserWarning, "store.py", 9)
    assert text == "warning: collection 'x' records no encoder version\n"
    assert cli._one_line_warning is warnings.formatwarning


def test_query_text_on_a_random_init_clip_collection(tmp_path: Path, store_args: list[str]) -> None:
    """Plumbing only: random-init CLIP (`@none`) ranks meaninglessly, but the text reaches the text tower of the
    collection's own model and k hits come back."""
    write_noise_images(tmp_path / "imgs", 4, size=(32, 32))
    args = ["ingest", str(tmp_path / "imgs"), "-c", "c", "-e", "clip:ViT-S-32-alt@none", "--workers", "0"]
    assert runner.invoke(app, [*args, "--no-progress", "--report", str(tmp_path / "r.csv"), *store_args]).exit_code == 0
    result = runner.invoke(
        app, ["query", "--text", "a red car", "--text", "a dog", "-c", "c", "-k", "3", "--json", *store_args]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["query"] for r in rows] == ["a red car", "a dog"] and all(len(r["hits"]) == 3 for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "a red car"], "encoder phash:8 has no text tower; text search needs a CLIP collection"),
        (["x.png", "--text", "a red car"], "one kind at a time"),
        ([], "nothing to search for"),
        (["--text", "a car", "--weights", "1"], "--text searches one encoder"),
    ],
)
def test_query_text_refusals_are_one_line(args: list[str], message: str, tmp_path: Path, store_args: list[str]) -> None:
    write_noise_images(tmp_path / "imgs", 2)
    _ingest(tmp_path / "imgs", store_args, tmp_path)
    result = runner.invoke(app, ["query", *args, "-c", "imgs", *store_args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
