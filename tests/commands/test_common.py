"""`with_run_options`: shared options declared once, gathered into `RunOptions`, shown in --help."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from cli import app
from commands.common import STORE_OPTIONS, ExitCode, RunOptions, user_errors, with_run_options
from pipeline.core.errors import LookalikeError

runner = CliRunner()


def _app(seen: list[tuple[str, RunOptions]]) -> typer.Typer:
    app = typer.Typer()

    @with_run_options("device", *STORE_OPTIONS, "progress")
    def command(name: Annotated[str, typer.Option(help="own option")] = "x", *, run: RunOptions) -> None:
        seen.append((name, run))

    app.command("go")(command)
    app.command("other")(lambda: None)  # a second command keeps `go` a sub-command
    return app


def test_shared_options_reach_the_command_as_run_options() -> None:
    seen: list[tuple[str, RunOptions]] = []
    result = runner.invoke(_app(seen), ["go", "--name", "n", "--store", "/s", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen == [("n", RunOptions(device="cpu", store="/s", progress=False))]


def test_defaults_and_help_list_only_the_chosen_options() -> None:
    seen: list[tuple[str, RunOptions]] = []
    assert runner.invoke(_app(seen), ["go"]).exit_code == 0
    assert seen == [("x", RunOptions())]
    shown = runner.invoke(_app(seen), ["go", "--help"]).output
    assert "--qdrant-api-key" in shown and "--name" in shown and "--workers" not in shown and "--no-face" not in shown


def test_no_face_is_checked() -> None:
    assert RunOptions(no_face="center").no_face_policy() == "center"
    with pytest.raises(LookalikeError, match="--no-face 'maybe'"):
        RunOptions(no_face="maybe").no_face_policy()


def test_every_exit_code_is_in_the_readme_table_and_the_help() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    epilog = typer.main.get_command(app).epilog or ""
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| ", readme, re.MULTILINE), code
        assert code == ExitCode.BUG or re.search(rf"\b{int(code)} ", epilog), code


def test_a_library_error_about_a_setting_gets_the_commands_flag() -> None:
    """The library names the setting (`max_pixels`); only the command layer knows it is `--max-pixels`."""
    one = typer.Typer()

    @one.command()
    def go(max_pixels: int = 5, other: str = "") -> None:
        with user_errors():
            raise LookalikeError(f"too large for {max_pixels}", setting=other or "max_pixels")

    result = CliRunner().invoke(one, [])
    assert result.exit_code == 2 and "error: too large for 5 (set by --max-pixels)" in result.output
    result = CliRunner().invoke(one, ["--other", "not_an_option"])
    assert result.exit_code == 2 and result.output.strip().endswith("too large for 5")
