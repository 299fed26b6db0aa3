"""Shared dataset records, root resolution and layout checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets import CandidateTask, OneShotTask, Pair, resolve_root
from pipeline.datasets.base import check_layout, find_missing, missing_files_error


def test_explicit_root_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_TLL", str(tmp_path / "elsewhere"))
    assert resolve_root(tmp_path, "LOOKALIKE_TLL", "tll") == tmp_path


def test_explicit_root_that_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope: no such folder \(the tll root given\)"):
        resolve_root(tmp_path / "nope", "LOOKALIKE_TLL", "tll")


def test_env_var_is_used_and_named_when_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_LFW", str(tmp_path))
    assert resolve_root(None, "LOOKALIKE_LFW", "lfw") == tmp_path
    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setenv("LOOKALIKE_LFW", str(tmp_path / "file.txt"))
    with pytest.raises(DatasetError, match=r"file\.txt: not a folder \(\$LOOKALIKE_LFW\)"):
        resolve_root(None, "LOOKALIKE_LFW", "lfw")


def test_default_is_shared_datasets_next_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOOKALIKE_OMNIGLOT", raising=False)
    (tmp_path / "shared" / "datasets" / "omniglot").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert resolve_root(None, "LOOKALIKE_OMNIGLOT", "omniglot") == (tmp_path / "shared/datasets/omniglot").resolve()


def test_no_root_anywhere_says_which_option_or_env_var_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOKALIKE_TLL", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"no tll dataset root: pass --tll-root PATH or set LOOKALIKE_TLL"):
        resolve_root(None, "LOOKALIKE_TLL", "tll", option="--tll-root")


def test_check_layout_names_everything_missing_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(DatasetError) as caught:
        check_layout(tmp_path, ("a.csv", "b.csv", "imgs/left"), "the X layout: a.csv, b.csv, imgs/left")
    message = str(caught.value)
    assert message == f"{tmp_path}: missing b.csv, imgs/left — expected the X layout: a.csv, b.csv, imgs/left"
    assert "\n" not in message


def test_missing_files_error_shows_the_first_five_and_the_count(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"{i}.jpg") for i in range(7)]
    Path(paths[0]).write_text("x")
    missing = find_missing([*paths, paths[3]])  # repeats count once
    assert missing == paths[1:]
    message = str(missing_files_error("list.csv", missing, "images are"))
    assert message.startswith("list.csv: 6 images are missing: ") and message.endswith("(first 5 shown)")
    assert paths[5] in message and paths[6] not in message


def test_task_records_are_frozen_and_checked() -> None:
    pair = Pair("a.jpg", "b.jpg", same=False, fold=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.same = True  # type: ignore[misc]
    with pytest.raises(ValueError, match="out of range"):
        CandidateTask("q", "q.jpg", ("a", "b"), ("a.jpg", "b.jpg"), answer=2)
    with pytest.raises(ValueError, match="2 ids, 1 paths"):
        CandidateTask("q", "q.jpg", ("a", "b"), ("a.jpg",), answer=None)
    with pytest.raises(ValueError, match="does not point at 'A/x'"):
        OneShotTask("A", "q.png", "A/x", ("1.png", "2.png"), ("A/y", "A/x"), answer=0)
