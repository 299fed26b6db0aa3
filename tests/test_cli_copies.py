"""`lookalike eval copies` on a copy benchmark that `bench copies` did not make: layout and columns by options alone.

Regression (issue 18): a missing `references/` folder was reported as a missing `ground_truth.csv`; each missing
part now gets its own one-line message naming its path and the option that sets it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
RUN = ["-e", "phash", "--workers", "0", "--no-progress", "--device", "cpu"]


def _smooth(rng: np.random.Generator) -> Image.Image:
    """A smooth RGB image (upsampled 6×6 noise): perceptual hashes tell such images apart."""
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return small.resize((96, 80), Image.Resampling.BICUBIC)


@pytest.fixture
def custom(tmp_path: Path) -> Path:
    """`db/` (4 references, one a distractor), `queries/` (3 copies, 1 distractor query, 1 with a missing reference)
    and `ground_truth.csv` with columns query,reference,transforms, one row naming a query that does not exist."""
    rng = np.random.default_rng(3)
    root = tmp_path / "mine"
    (root / "db").mkdir(parents=True)
    (root / "queries").mkdir()
    refs = [_smooth(rng) for _ in range(4)]
    for i, image in enumerate(refs):
        image.save(root / "db" / f"r{i}.png")
    refs[0].resize((48, 40)).save(root / "queries" / "q0.jpg", quality=90)
    ImageOps.grayscale(refs[1]).save(root / "queries" / "q1.jpg", quality=90)
    refs[2].save(root / "queries" / "q2.jpg", quality=30)
    _smooth(rng).save(root / "queries" / "distractor.jpg")
    _smooth(rng).save(root / "queries" / "q3.jpg")
    truth = {
        "query": ["q0.jpg", "q1.jpg", "q2", "ghost.jpg", "q3.jpg"],  # "q2": a file stem, as DISC21's ids
        "reference": ["r0.png", "r1.png", "r2", "r0.png", "gone.png"],
        "transforms": ["resize", "greyscale", "jpeg", "resize", "crop"],
    }
    pl.DataFrame(truth).write_csv(root / "ground_truth.csv")
    return root


CUSTOM = ["--references-dir", "db", "--reference-column", "reference", "--query-column", "query"]


def test_eval_copies_scores_a_custom_layout_through_options(custom: Path, tmp_path: Path) -> None:
    args = ["eval", "copies", str(custom), *CUSTOM, "--transform-column", "transforms", *RUN]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "eval"), "--store", str(tmp_path / "qdrant")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    counts, metrics = saved["counts"], saved["metrics"]
    assert (counts["references"], counts["queries"], counts["copies"], counts["negatives"]) == (4, 4, 3, 1)
    assert counts["truth_rows_missing_query"] == 1 and counts["truth_rows_missing_reference"] == 1
    assert metrics["recall_at_1"] == 1.0  # phash is blind to resizing, greyscale and JPEG
    assert {"recall_at_1_resize", "recall_at_1_greyscale", "recall_at_1_jpeg"} <= set(metrics)
    assert "ghost.jpg" in result.output and "q3.jpg → gone.png" in result.output  # the rows naming no file, shown


def test_without_a_transform_column_there_is_no_breakdown(custom: Path, tmp_path: Path) -> None:
    pl.read_csv(custom / "ground_truth.csv").drop("transforms").write_csv(custom / "pairs.csv")
    args = ["eval", "copies", str(custom), *CUSTOM, "--ground-truth", str(custom / "pairs.csv"), *RUN]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "eval"), "--store", str(tmp_path / "qdrant")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert "recall_at_1" in metrics and not [m for m in metrics if m.startswith("recall_at_1_")]


def _bench_like(root: Path) -> Path:
    """The default (`bench copies`) layout with one reference and one copy."""
    for sub in ("references", "queries"):
        (root / sub).mkdir(parents=True)
    image = _smooth(np.random.default_rng(0))
    image.save(root / "references" / "o0.png")
    image.save(root / "queries" / "o0_copy.jpg")
    pl.DataFrame(
        {"query": ["queries/o0_copy.jpg"], "reference": ["references/o0.png"], "transform": ["jpeg"]}
    ).write_csv(root / "ground_truth.csv")
    return root


def _remove(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()


MISSING = [
    ("nothing", [], "nothing: no such folder"),
    ("references", [], "references: not found; it is the benchmark's references folder (set by --references-dir)"),
    ("queries", [], "queries: not found; it is the benchmark's queries folder (set by --queries-dir)"),
    ("ground_truth.csv", [], "ground_truth.csv: not found; it is the benchmark's ground-truth file (set by"),
    ("", ["--reference-column", "ref"], "ground_truth.csv: no column ref (the reference column); its columns are"),
    ("", ["--transform-column", "edit"], "no column edit (the transform column)"),
    ("", ["--references-dir", "queries/o0_copy.jpg"], "o0_copy.jpg: not a folder; it is the benchmark's references"),
]


@pytest.mark.parametrize(("part", "options", "message"), MISSING, ids=[m for _, _, m in MISSING])
def test_each_missing_part_has_its_own_one_line_message(
    tmp_path: Path, part: str, options: list[str], message: str
) -> None:
    root = _bench_like(tmp_path / "bench")
    if part and part != "nothing":
        _remove(root / part)
    dataset = tmp_path / "nothing" if part == "nothing" else root
    args = ["eval", "copies", str(dataset), *options, *RUN, "--store", str(tmp_path / "qdrant")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    if part == "references":
        assert "ground_truth" not in lines[0]  # the old message blamed the ground truth
    assert not (tmp_path / "qdrant").exists()  # refused before any encoder loaded or the store opened


def test_a_folder_without_images_is_refused(tmp_path: Path) -> None:
    root = _bench_like(tmp_path / "bench")
    (root / "references" / "o0.png").rename(root / "references" / "o0.txt")
    result = runner.invoke(app, ["eval", "copies", str(root), *RUN, "--store", str(tmp_path / "qdrant")])
    assert result.exit_code == 2 and "no images in the references folder (set by --references-dir)" in result.stderr


def test_a_read_only_benchmark_gets_its_hard_pairs_in_the_report_folder(
    custom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DISC21 often sits on read-only storage: writing the pairs there failed after the whole evaluation.
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: real_access(path, mode) and not (mode & os.W_OK and Path(path) == custom)
    )
    monkeypatch.chdir(tmp_path)  # the report folder is .lookalike/reports under the working folder
    args = ["eval", "copies", str(custom), *CUSTOM, *RUN, "--out", str(tmp_path / "eval"), "--store", "qdrant"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pairs = tmp_path / ".lookalike" / "reports" / "mine-pairs-hard-phash-8.csv"
    assert pairs.is_file() and not list(custom.glob("pairs-hard-*")) and str(pairs.name) in result.output
