"""Totally-Looks-Like (COMP90086 challenge layout): training pairs, local 1-of-20 tasks, and the test tasks."""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.datasets.base import CandidateTask, check_layout, find_missing, missing_files_error
from pipeline.errors import DatasetError

TLL_ENV = "LOOKALIKE_TLL"
TLL_REQUIRED = ("train.csv", "train/left", "train/right", "test_candidates.csv", "test/left", "test/right")
TLL_LAYOUT = "the COMP90086 layout: " + ", ".join(TLL_REQUIRED)
IMAGE_SUFFIX = ".jpg"


@dataclass(frozen=True)
class TllPair:
    """One training pair: a left image and the right image people judged it to look like."""

    left_id: str
    right_id: str
    left: str
    right: str


@dataclass(frozen=True)
class TllDataset:
    """A validated COMP90086 Totally-Looks-Like root; build it with `load_tll`."""

    root: Path

    @property
    def train_csv(self) -> Path:
        return self.root / "train.csv"

    @property
    def test_csv(self) -> Path:
        return self.root / "test_candidates.csv"

    @property
    def sample_submission(self) -> Path:
        """The example submission (`left,c0..c19` confidences); optional, not checked by `load_tll`."""
        return self.root / "sample-submission.csv"

    def image_path(self, split: str, side: str, image_id: str) -> str:
        """Path of `<split>/<side>/<id>.jpg`, e.g. image_path("train", "left", "aaa")."""
        return str(self.root / split / side / f"{image_id}{IMAGE_SUFFIX}")

    def train_pairs(self) -> list[TllPair]:
        """The pairs of train.csv, in file order.

        Raises:
            DatasetError: train.csv lacks the left/right columns, repeats a left id, or names missing images.
        """
        rows = _read_rows(self.train_csv, ("left", "right"))
        _reject_duplicate_lefts(self.train_csv, [row[0] for row in rows])
        pairs = [
            TllPair(left, right, self.image_path("train", "left", left), self.image_path("train", "right", right))
            for left, right in rows
        ]
        _require_files(self.train_csv, [path for pair in pairs for path in (pair.left, pair.right)])
        return pairs

    def split_train(self, seed: int, val_fraction: float = 0.2) -> tuple[list[TllPair], list[TllPair]]:
        """Split the training pairs into (train, validation), deterministically for a given seed.

        Each part keeps train.csv's order. The validation part has round(n × val_fraction) pairs.

        Raises:
            ValueError: val_fraction is not strictly between 0 and 1, or leaves a part empty.
        """
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        pairs = self.train_pairs()
        n_val = round(len(pairs) * val_fraction)
        if not 0 < n_val < len(pairs):
            raise ValueError(f"val_fraction {val_fraction} of {len(pairs)} pairs leaves an empty part")
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        val_index = set(order[:n_val])
        train = [pair for i, pair in enumerate(pairs) if i not in val_index]
        val = [pair for i, pair in enumerate(pairs) if i in val_index]
        return train, val

    def test_tasks(self) -> list[CandidateTask]:
        """The challenge's test tasks from test_candidates.csv (answer unknown, so None).

        Raises:
            DatasetError: the header is not `left,c0..cK`, a row is short, a left id repeats, or images are missing.
        """
        header = _read_header(self.test_csv)
        n_candidates = len(header) - 1
        expected = ("left", *(f"c{i}" for i in range(n_candidates)))
        if n_candidates < 1 or tuple(header) != expected:
            raise DatasetError(f"{self.test_csv}: header is {','.join(header)!r}; expected left,c0,c1,…")
        rows = _read_rows(self.test_csv, expected)
        _reject_duplicate_lefts(self.test_csv, [row[0] for row in rows])
        tasks = [
            CandidateTask(
                query_id=row[0],
                query=self.image_path("test", "left", row[0]),
                candidate_ids=tuple(row[1:]),
                candidates=tuple(self.image_path("test", "right", c) for c in row[1:]),
                answer=None,
            )
            for row in rows
        ]
        _require_files(self.test_csv, [path for task in tasks for path in (task.query, *task.candidates)])
        return tasks


def load_tll(root: str | os.PathLike[str]) -> TllDataset:
    """Open a Totally-Looks-Like root in the COMP90086 layout.

    Raises:
        DatasetError: the root is not a folder or lacks one of train.csv, train/left, train/right,
            test_candidates.csv, test/left, test/right (the message names each one missing).
    """
    path = Path(root)
    check_layout(path, TLL_REQUIRED, TLL_LAYOUT)
    return TllDataset(path)


def candidate_tasks(pairs: Sequence[TllPair], n_candidates: int = 20, seed: int = 0) -> list[CandidateTask]:
    """Build the challenge's task for each pair: its true right image among n−1 random foils.

    Foils are the right images of the OTHER pairs in `pairs` (distinct, never the true right id), and the
    true right sits at a random position; everything is drawn from one generator seeded by `seed`.

    Raises:
        ValueError: n_candidates < 2.
        DatasetError: fewer than n_candidates distinct right images to draw from.
    """
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, got {n_candidates}")
    pool = sorted({pair.right_id: pair.right for pair in pairs}.items())
    if len(pool) < n_candidates:
        raise DatasetError(f"{len(pool)} distinct right images cannot make {n_candidates}-candidate tasks")
    rng = random.Random(seed)
    return [_candidate_task(pair, pool, n_candidates, rng) for pair in pairs]


def _candidate_task(
    pair: TllPair, pool: Sequence[tuple[str, str]], n_candidates: int, rng: random.Random
) -> CandidateTask:
    # Draw n and drop the true right if drawn: exactly n−1 distinct foils, without rebuilding the pool per pair.
    foils = [item for item in rng.sample(pool, n_candidates) if item[0] != pair.right_id][: n_candidates - 1]
    answer = rng.randrange(n_candidates)
    chosen = [*foils[:answer], (pair.right_id, pair.right), *foils[answer:]]
    return CandidateTask(
        query_id=pair.left_id,
        query=pair.left,
        candidate_ids=tuple(item[0] for item in chosen),
        candidates=tuple(item[1] for item in chosen),
        answer=answer,
    )


def _read_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DatasetError(f"{path}: empty file")
    return [name.strip() for name in header]


def _read_rows(path: Path, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Rows of a CSV as strings (ids like 'nan' or 'tru' stay text), projected onto `columns`."""
    header = _read_header(path)
    absent = [name for name in columns if name not in header]
    if absent:
        raise DatasetError(f"{path}: no {', '.join(absent)} column (have: {', '.join(header)})")
    index = [header.index(name) for name in columns]
    rows: list[tuple[str, ...]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, cells in enumerate(csv.reader(handle), start=1):
            if line_no == 1 or not any(cell.strip() for cell in cells):
                continue
            values = tuple(cells[i].strip() if i < len(cells) else "" for i in index)
            if not all(values):
                raise DatasetError(f"{path}: line {line_no} has empty or missing cells: {','.join(cells)!r}")
            rows.append(values)
    return rows


def _reject_duplicate_lefts(path: Path, lefts: Sequence[str]) -> None:
    duplicates = sorted(left for left, count in Counter(lefts).items() if count > 1)
    if duplicates:
        shown = ", ".join(duplicates[:5])
        raise DatasetError(f"{path}: {len(duplicates)} left ids appear more than once: {shown}")


def _require_files(source: Path, paths: Sequence[str]) -> None:
    missing = find_missing(paths)
    if missing:
        raise missing_files_error(str(source), missing, "referenced images are")
