"""Library errors name the setting in words (`LookalikeError.setting`); the command layer adds the flag that sets it.

Issue 17: the library no longer names CLI flags. Each case below runs a real command whose library error is about one
setting, and checks the whole path: exit 2, one line on stderr, the library's words, and the flag exactly once, as
the hint `user_errors` appends. Every case is refused before any encoder loads, training starts or a store opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
STORE = "qdrant"  # under tmp_path; must never be created
RUN = ["--store", STORE, "--workers", "0", "--no-progress"]  # the shared run options (not on `bench copies`)


def _copy_benchmark(root: Path, *, references: bool = True) -> Path:
    """Just the layout `eval copies` checks first: folders and a ground truth, no images."""
    (root / "queries").mkdir(parents=True)
    if references:
        (root / "references").mkdir()
    (root / "ground_truth.csv").write_text("query,reference\nq0.jpg,r0.jpg\n")
    return root


def _non_empty(folder: Path) -> Path:
    folder.mkdir()
    (folder / "keep.txt").write_text("not a benchmark")
    return folder


CASES = [
    pytest.param(
        lambda tmp: ["dedup", "-c", "c", "--precision", "0.9", *RUN],
        "--pairs",
        "a target precision needs labelled pairs to calibrate on",
        id="dedup-precision-without-pairs",
    ),
    pytest.param(
        lambda tmp: ["dedup", "-c", "c", "--threshold", "0.9", "--device", "tpu", *RUN],
        "--device",
        "device 'tpu': expected auto, cpu, cuda or cuda:N",
        id="dedup-bad-device",
    ),
    pytest.param(
        lambda tmp: ["finetune", "--data", "folder:x", "--out", str(tmp / "m"), "--channels", "2", *RUN],
        "--channels",
        "channels 2: expected 1 (greyscale) or 3 (RGB)",
        id="finetune-channels",
    ),
    pytest.param(
        lambda tmp: ["finetune", "--data", f"copies:{tmp}", "--out", str(tmp / "m"), "--mode", "head", *RUN],
        "--mode",
        "head mode cannot embed and cache through the vector store; use mode cnn",
        id="finetune-copies-in-head-mode",
    ),
    pytest.param(
        lambda tmp: ["eval", "copies", str(_copy_benchmark(tmp / "bench", references=False)), *RUN],
        "--references-dir",
        "references: not found; it is the benchmark's references folder",
        id="eval-copies-missing-references",
    ),
    pytest.param(
        lambda tmp: ["eval", "copies", str(_copy_benchmark(tmp / "bench")), "--reference-column", "ref", *RUN],
        "--reference-column",
        "no column ref (the reference column); its columns are query, reference",
        id="eval-copies-missing-column",
    ),
    pytest.param(
        lambda tmp: ["eval", "oneshot", "-e", "phash:8,phash:16", "--weights", "fit", *RUN],
        "--weights",
        "weights 'fit' needs training pairs",
        id="eval-oneshot-weights-fit",
    ),
    pytest.param(
        lambda tmp: ["bench", "copies", str(tmp), "--out", str(_non_empty(tmp / "taken"))],
        "--out",
        "is not empty; choose a new folder for the benchmark",
        id="bench-copies-non-empty-out",
    ),
]


@pytest.mark.parametrize(("make_args", "flag", "words"), CASES)
def test_a_setting_error_names_its_flag_once_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_args: Callable[[Path], list[str]], flag: str, words: str
) -> None:
    monkeypatch.chdir(tmp_path)  # relative defaults (runs/, .lookalike/) and the store land here
    result = runner.invoke(app, make_args(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    [line] = lines
    assert words in line
    assert len(re.findall(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", line)) == 1, line
    assert line.endswith(f"(set by {flag})"), line
    assert "Traceback" not in result.output and not (tmp_path / STORE).exists()
