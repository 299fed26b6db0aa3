"""`lookalike ingest` streams its source in rounds (issue 18): the same output and report whatever the round size."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from pipeline.index import ingest as ingest_module

runner = CliRunner()


def _ingest(source: Path, out: Path) -> tuple[int, str, str]:
    args = ["ingest", str(source), "-c", "imgs", "-e", "phash", "--workers", "0", "--no-progress"]
    result = runner.invoke(app, [*args, "--report", str(out / "report.csv"), "--store", str(out / "qdrant")])
    untimed = re.sub(r"\([\d.]+ img/s, [\d.]+ s\)", "(…)", result.output.replace(str(out), "OUT"))
    return result.exit_code, untimed, (out / "report.csv").read_text()


def test_rounds_of_one_file_give_the_output_and_report_of_one_round(
    mixed_image_folder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole folder was listed, hashed and kept (paths, hashes, every outcome) before anything was written.
    whole = _ingest(mixed_image_folder.root, tmp_path / "whole")
    monkeypatch.setattr(ingest_module, "ROUND_FILES", 1)
    rounds = _ingest(mixed_image_folder.root, tmp_path / "rounds")
    assert rounds == whole
    assert whole[0] == 3 and "duplicate content 1" in whole[1] and "skipped 1" in whole[1]
    assert "same content as" in whole[2] and "not an image file name" in whole[2]
