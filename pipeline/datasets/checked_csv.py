"""Strictly checked CSV lists of image ids (the TLL files): UTF-8, a known header, every row full, ids that are
plain file names, no repeats. Each problem is one `DatasetError` line naming the file, the line and what is wrong."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError

MAX_CSV_BYTES = 64 * 2**20  # the real test_candidates.csv is ~90 KB; a bigger file is not a TLL list
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # control, format (e.g. bidi overrides), line separators


@dataclass(frozen=True)
class CsvRow:
    """A data row of a checked TLL CSV: its 1-based line in the file (the header is line 1) and its cells."""

    line: int
    cells: tuple[str, ...]


def read_checked_csv(
    path: Path, expected: Callable[[tuple[str, ...]], tuple[str, ...]], id_columns: int | None = None, why: str = ""
) -> list[CsvRow]:
    """The data rows of a TLL CSV whose header is `expected(header)`: every row full, its first `id_columns`
    cells (all when None) plain ids. Cells are stripped text (ids like 'nan' or 'tru' stay text); blank lines
    are skipped.
    """
    header, rows = parse_csv(path)
    columns = expected(header)
    if header != columns:
        raise DatasetError(f"{path}: line 1: header is {','.join(header)!r}; expected {','.join(columns)}{why}")
    if not rows:
        raise DatasetError(f"{path}: header only, no data rows")
    for row in rows:
        if len(row.cells) != len(columns):
            raise DatasetError(f"{path}: line {row.line}: {len(row.cells)} cells; the header has {len(columns)}")
        for index, (column, cell) in enumerate(zip(columns, row.cells, strict=True)):
            if not cell:
                raise DatasetError(f"{path}: line {row.line}: empty {column} cell")
            if id_columns is None or index < id_columns:
                check_id(path, row, column, cell)
    return rows


def parse_csv(path: Path) -> tuple[tuple[str, ...], list[CsvRow]]:
    reader = csv.reader(io.StringIO(decode_utf8(path), newline=""), strict=True)
    try:
        header = tuple(cell.strip() for cell in next(reader, []))
        rows = [CsvRow(reader.line_num, tuple(c.strip() for c in cells)) for cells in reader if "".join(cells).strip()]
    except csv.Error as e:
        raise DatasetError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from e
    if not any(header):
        raise DatasetError(f"{path}: empty file (or a blank first line); expected a header line, then one line per row")
    return header, rows


def decode_utf8(path: Path) -> str:
    """The text of a UTF-8 file (a leading BOM is dropped)."""
    if not path.is_file():
        raise DatasetError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise DatasetError(f"{path}: {size} bytes; a TLL list is at most {MAX_CSV_BYTES} bytes")
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read it ({e.strerror or e})") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DatasetError(f"{path}: line {line}: byte {data[e.start]:#04x} is not UTF-8; save it as UTF-8") from e


def check_id(path: Path, row: CsvRow, column: str, image_id: str) -> None:
    problem = id_problem(image_id)
    if problem:
        raise DatasetError(f"{path}: line {row.line}: {column} id {image_id!r} is not a plain file name ({problem})")


def id_problem(image_id: str) -> str | None:
    """Why `image_id` cannot name `<id>.jpg` inside its folder, or None when it can."""
    if not image_id:
        return "empty"
    if "/" in image_id or "\\" in image_id:
        return "it has a path separator"
    if image_id in (".", ".."):
        return "it names a folder"
    if any(unicodedata.category(char) in CONTROL_CATEGORIES for char in image_id):
        return "it has a control character"
    return None


def reject_repeated_lefts(path: Path, rows: Sequence[CsvRow]) -> None:
    first: dict[str, int] = {}
    for row in rows:
        left = row.cells[0]
        if left in first:
            raise DatasetError(f"{path}: line {row.line}: left id {left!r} repeats line {first[left]}")
        first[left] = row.line


def reject_repeated_candidates(path: Path, rows: Sequence[CsvRow]) -> None:
    for row in rows:
        seen: dict[str, int] = {}
        for column, candidate in enumerate(row.cells[1:]):
            if candidate in seen:
                raise DatasetError(
                    f"{path}: line {row.line}: candidate {candidate!r} appears twice (c{seen[candidate]} and c{column})"
                )
            seen[candidate] = column
