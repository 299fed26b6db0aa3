"""The strict CSV reader behind the TLL lists, on its own: ids, encodings, headers, repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets.checked_csv import (
    id_problem,
    read_checked_csv,
    reject_repeated_candidates,
    reject_repeated_lefts,
)


@pytest.mark.parametrize(
    ("image_id", "problem"),
    [("abc", None), ("nan", None), ("", "empty"), ("a/b", "path separator"), ("a\\b", "path separator"),
     ("..", "names a folder"), ("a\u202eb", "control character"), ("a\nb", "control character")],
)  # fmt: skip
def test_id_problem_names_what_is_wrong(image_id: str, problem: str | None) -> None:
    found = id_problem(image_id)
    assert found == problem if problem is None else problem in (found or "")


def test_rows_keep_their_file_line_and_a_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffleft,right\n\nab,cd\n ef , gh \n".encode())
    rows = read_checked_csv(path, lambda header: ("left", "right"))
    assert [(r.line, r.cells) for r in rows] == [(3, ("ab", "cd")), (4, ("ef", "gh"))]


@pytest.mark.parametrize(
    ("text", "message"),
    [(b"left,x\nab,cd\n", "line 1: header is 'left,x'; expected left,right"), (b"left,right\n", "header only"),
     (b"left,right\nab\n", "line 2: 1 cells"), (b"left,right\nab,\n", "line 2: empty right cell"),
     (b"left,right\nab,c/d\n", "line 2: right id 'c/d'"), (b"left,right\nab,\xff\n", "line 2: byte 0xff is not UTF-8"),
     (b"", "empty file")],
)  # fmt: skip
def test_each_problem_is_one_line_naming_file_and_line(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    with pytest.raises(DatasetError, match=message) as caught:
        read_checked_csv(path, lambda header: ("left", "right"))
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_repeats_are_refused_with_both_places(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("left,c0,c1\na,x,y\nb,z,z\na,x,w\n")
    rows = read_checked_csv(path, lambda header: ("left", "c0", "c1"))
    with pytest.raises(DatasetError, match="left id 'a' repeats line 2"):
        reject_repeated_lefts(path, rows)
    with pytest.raises(DatasetError, match=r"line 3: candidate 'z' appears twice \(c0 and c1\)"):
        reject_repeated_candidates(path, rows)
