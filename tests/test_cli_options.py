"""Out-of-range option values are refused at the CLI edge: exit 2, the option named, no traceback.

Regression (issue 16's hostile-input campaign): `query -k 0` / `-k -1`, `--batch-size 0`, `--workers -1` and
`--max-pixels 0` ended in tracebacks, and `ingest --limit -5` silently ingested all but the last 5 images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
BAD = [
    (["query", "x.jpg", "-c", "c", "-k", "0"], "-k"),
    (["query", "x.jpg", "-c", "c", "-k", "-1"], "-k"),
    (["ingest", "imgs", "-c", "c", "--batch-size", "0"], "--batch-size"),
    (["ingest", "imgs", "-c", "c", "--workers", "-1"], "--workers"),
    (["ingest", "imgs", "-c", "c", "--max-pixels", "0"], "--max-pixels"),
    (["ingest", "imgs", "-c", "c", "--limit", "-5"], "--limit"),
    (["ingest", "imgs", "-c", "c", "--limit", "0"], "--limit"),
    (["eval", "retrieval", "--dataset", "imgs", "-e", "phash", "-k", "0"], "-k"),
    (["eval", "retrieval", "--dataset", "imgs", "-e", "phash", "--limit", "-1"], "--limit"),
    (["eval", "copies", "bench", "-e", "phash", "-k", "0"], "-k"),
    (["dedup", "-c", "c", "--k", "0"], "--k"),
    (["finetune", "--data", "imgs", "--batch-size", "0"], "--batch-size"),
]


@pytest.mark.parametrize(("args", "option"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_an_out_of_range_value_is_refused_before_any_work(args: list[str], option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "store")] if args[0] != "finetune" else args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and f"'{option}'" in result.output
    assert not (tmp_path / "store").exists()  # refused before the store was opened


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


ROOT_COMMAND = typer.main.get_command(app)
MAY_BE_NEGATIVE = {(("dedup",), "--threshold")}  # a similarity: cosine scores go down to -1


def _numeric_options() -> list[tuple[tuple[str, ...], str, str]]:
    """(command path, option, its value type) for every int/float option of every command."""
    found = []
    for path, command in _commands(ROOT_COMMAND):
        for param in command.params:
            kind = param.bare_type() if param.param_type_name == "option" else ""
            if kind in ("int", "float"):
                found.append((path, param.opts[0], kind))
    return found


def _required_args(command: Any) -> list[str]:
    """Placeholder values for a command's required arguments and options, so only the option under test is bad."""
    args: list[str] = []
    for param in command.params:
        if param.required:
            args += ["x"] if param.param_type_name == "argument" else [param.opts[0], "x"]
    return args


NUMERIC = [case for case in _numeric_options() if case[:2] not in MAY_BE_NEGATIVE]


@pytest.mark.parametrize(("path", "option", "kind"), NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o, _ in NUMERIC])
@pytest.mark.parametrize("value", ["-1", "abc"])
def test_every_numeric_option_refuses_nonsense_in_one_line(
    path: tuple[str, ...], option: str, kind: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every int/float option of every command, found by walking the command tree (so new options are covered):
    a negative number or a word is refused before any work — exit 2, one `error:` line naming the option."""
    monkeypatch.chdir(tmp_path)
    command = dict(_commands(ROOT_COMMAND))[path]
    store = ["--store", str(tmp_path / "store")] if any("--store" in p.opts for p in command.params) else []
    result = runner.invoke(app, [*path, *_required_args(command), option, value, *store])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and option in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "store").exists() and list(tmp_path.iterdir()) == []  # refused before any work


SEMANTIC = [  # (arguments, what the one line must name)
    (["query", "imgs/a.png", "-c", "c", "--json", "--csv"], "--json"),
    (["query", "imgs/a.png", "-c", "c", "-e", "phash", "--weights", "0.5,0.5"], "--weights"),
    (["query", "imgs/a.png", "-c", "c", "--where", "label"], "--where"),
    (["ingest", "imgs", "-c", "", "-e", "phash"], "collection"),
    (["ingest", "imgs", "-c", ".", "-e", "phash"], "collection"),
    (["ingest", "imgs", "-c", "..", "-e", "phash"], "collection"),
    (["ingest", "imgs", "-c", "a/b", "-e", "phash"], "collection"),
    (["ingest", "imgs", "-c", "c", "-e", "nosuch"], "nosuch"),
    (["ingest", "imgs", "-c", "c", "-e", "phash", "--no-face", "maybe"], "--no-face"),
    (["ingest", "imgs", "-c", "c", "-e", "phash", "--device", "tpu"], "tpu"),
    (["ingest", "nowhere", "-c", "c", "-e", "phash"], "nowhere"),
    (["ingest", "ragged.csv", "-c", "c", "-e", "phash"], "every row needs as many fields"),  # not polars' option
    (["dedup", "-c", "c", "--threshold", "0.9", "--method", "fast"], "--method"),
    (["dedup", "-c", "c", "--threshold", "0.9", "--precision", "0.9"], "--threshold"),
    (["dedup", "-c", "c", "--precision", "1.5"], "--precision"),
    (["dedup", "--undo", "nowhere.csv"], "nowhere.csv"),
    (["finetune", "--data", "nosuch:imgs", "--out", "o"], "nosuch"),
    (["finetune", "--data", "folder:imgs", "--out", "o", "--mode", "deep"], "deep"),
    (["finetune", "--data", "folder:imgs", "--out", "o", "--val-fraction", "1.0"], "--val-fraction"),
    (["finetune", "--data", "folder:imgs", "--out", "o", "--width", "256", "--input-size", "512"], "not be loaded"),
    (["eval", "retrieval", "--dataset", "imgs", "-e", "phash", "-c", ".."], "collection"),
]


@pytest.mark.parametrize(("args", "named"), SEMANTIC, ids=[" ".join(a) for a, _ in SEMANTIC])
def test_bad_values_are_one_line_naming_the_problem(
    args: list[str], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs" / "label").mkdir(parents=True)
    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "imgs" / "a.png")
    Image.new("RGB", (16, 16), (30, 20, 10)).save(tmp_path / "imgs" / "label" / "b.png")
    (tmp_path / "ragged.csv").write_text("path,label\nimgs/a.png,x\nimgs/label/b.png,y,extra\n")
    store = [] if args[0] == "finetune" else ["--store", str(tmp_path / "store")]
    result = runner.invoke(app, [*args, *store])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], result.stderr
    assert "Traceback" not in result.output
