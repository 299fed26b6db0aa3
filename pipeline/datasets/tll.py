"""Totally-Looks-Like (COMP90086 challenge layout): training pairs, local 1-of-20 tasks, and the test tasks.

A dataset is input from outside, so each CSV is read whole and checked before anything uses it
(`pipeline.datasets.checked_csv`: UTF-8, exactly the expected columns, one non-empty cell per column on every row,
ids that are plain file names, left ids unique, candidates distinct within a row), then every image it names must
be present. Each problem is one `DatasetError` line naming the file, the line and what is wrong.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError
from pipeline.datasets.base import CandidateTask, check_layout, find_missing
from pipeline.datasets.checked_csv import CsvRow, read_checked_csv, reject_repeated_candidates, reject_repeated_lefts

TLL_ENV = "LOOKALIKE_TLL"
# The held-out split of train.csv that `lookalike eval candidates` scores by default: training never uses it.
EVAL_SPLIT_SEED = 0
EVAL_VAL_FRACTION = 0.2
EVAL_CANDIDATES = 20  # candidates per task (1 true + 19 foils), as on the leaderboard
TLL_REQUIRED = ("train.csv", "train/left", "train/right", "test_candidates.csv", "test/left", "test/right")
TLL_LAYOUT = "the COMP90086 layout: " + ", ".join(TLL_REQUIRED)
IMAGE_SUFFIX = ".jpg"
TRAIN_COLUMNS = ("left", "right")


@dataclass(frozen=True)
class TllPair:
    """One training pair: a left image and the right image people judged it to look like."""

    left_id: str
    right_id: str
    left: str
    right: str


@dataclass(frozen=True)
class SampleSubmission:
    """sample-submission.csv as checked: its columns (`left,c0..`) and its left ids in file order."""

    path: Path
    columns: tuple[str, ...]
    lefts: tuple[str, ...]


@dataclass(frozen=True)
class TllDataset:
    """A COMP90086 Totally-Looks-Like root whose layout was checked; build it with `load_tll`."""

    root: Path

    @property
    def train_csv(self) -> Path:
        return self.root / "train.csv"

    @property
    def test_csv(self) -> Path:
        return self.root / "test_candidates.csv"

    @property
    def sample_submission(self) -> Path:
        """The example submission (`left,c0..c19` confidences); optional, read by `read_sample`."""
        return self.root / "sample-submission.csv"

    def image_path(self, split: str, side: str, image_id: str) -> str:
        """Path of `<split>/<side>/<id>.jpg`, e.g. image_path("train", "left", "aaa")."""
        return os.path.join(self.root, split, side, f"{image_id}{IMAGE_SUFFIX}")  # 90k calls: not pathlib

    def train_pairs(self) -> list[TllPair]:
        """The pairs of train.csv, in file order.

        Raises:
            DatasetError: train.csv is unreadable or malformed (see the module docstring), repeats a left id, or
                names a missing image.
        """
        rows = read_checked_csv(self.train_csv, lambda header: TRAIN_COLUMNS)
        reject_repeated_lefts(self.train_csv, rows)
        _require_images(self.train_csv, self._image_refs("train", TRAIN_COLUMNS, rows))
        return [
            TllPair(left, right, self.image_path("train", "left", left), self.image_path("train", "right", right))
            for left, right in (row.cells for row in rows)
        ]

    def split_train(self, seed: int, val_fraction: float = 0.2) -> tuple[list[TllPair], list[TllPair]]:
        """Split the training pairs into (train, validation), deterministically for a given seed.

        Each part keeps train.csv's order. The validation part has round(n × val_fraction) pairs.

        Raises:
            ValueError: val_fraction is not strictly between 0 and 1 (the CLI refuses such values first).
            DatasetError: train.csv is malformed (`train_pairs`), or too short for val_fraction to leave two
                non-empty parts.
        """
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        pairs = self.train_pairs()
        n_val = round(len(pairs) * val_fraction)
        if not 0 < n_val < len(pairs):
            raise DatasetError(
                f"{self.train_csv}: holding out {val_fraction:g} of its {len(pairs)} pairs leaves an empty part"
            )
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        val_index = set(order[:n_val])
        train = [pair for i, pair in enumerate(pairs) if i not in val_index]
        val = [pair for i, pair in enumerate(pairs) if i in val_index]
        return train, val

    def test_tasks(self, sample: SampleSubmission | None = None) -> list[CandidateTask]:
        """The challenge's test tasks from test_candidates.csv (answer unknown, so None).

        Args:
            sample: when given, the header must be the sample submission's (same number of candidates).

        Raises:
            DatasetError: the header is not `left,c0..cK` (or not the sample's), the file is otherwise malformed
                (see the module docstring), a left id repeats, a row repeats a candidate, or images are missing.
        """
        if sample is None:
            rows = read_checked_csv(self.test_csv, _candidate_columns)
        else:
            rows = read_checked_csv(
                self.test_csv, lambda header: sample.columns, why=f" (the columns of {sample.path})"
            )
        reject_repeated_lefts(self.test_csv, rows)
        reject_repeated_candidates(self.test_csv, rows)
        columns = _candidate_columns(rows[0].cells)
        _require_images(self.test_csv, self._image_refs("test", columns, rows))
        return [
            CandidateTask(
                query_id=row.cells[0],
                query=self.image_path("test", "left", row.cells[0]),
                candidate_ids=row.cells[1:],
                candidates=tuple(self.image_path("test", "right", c) for c in row.cells[1:]),
                answer=None,
            )
            for row in rows
        ]

    def read_sample(self) -> SampleSubmission | None:
        """sample-submission.csv, checked (`read_sample_submission`); None when the root has none."""
        return read_sample_submission(self.sample_submission) if self.sample_submission.is_file() else None

    def _image_refs(
        self, split: str, columns: Sequence[str], rows: Sequence[CsvRow]
    ) -> Iterator[tuple[CsvRow, str, str, str]]:
        """(row, column, id, image path) of every cell; the `left` column names left images, the rest right ones."""
        for row in rows:
            for column, image_id in zip(columns, row.cells, strict=True):
                side = "left" if column == "left" else "right"
                yield row, column, image_id, self.image_path(split, side, image_id)


def load_tll(root: str | os.PathLike[str]) -> TllDataset:
    """Open a Totally-Looks-Like root in the COMP90086 layout.

    Raises:
        DatasetError: the root is not a folder or lacks one of train.csv, train/left, train/right,
            test_candidates.csv, test/left, test/right (the message names each one missing).
    """
    path = Path(root)
    check_layout(path, TLL_REQUIRED, TLL_LAYOUT)
    return TllDataset(path)


def read_sample_submission(path: Path) -> SampleSubmission:
    """Read and check an example submission: header `left,c0..cK`, plain and unique left ids, full rows.

    Raises:
        DatasetError: one line naming the file, the line and what is wrong.
    """
    rows = read_checked_csv(path, _candidate_columns, id_columns=1)  # the other cells are confidences
    reject_repeated_lefts(path, rows)
    return SampleSubmission(path, _candidate_columns(rows[0].cells), tuple(row.cells[0] for row in rows))


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


def _candidate_columns(header: Sequence[str]) -> tuple[str, ...]:
    """`left,c0..c{K-1}` for a header of 1 + K columns (at least one candidate)."""
    return ("left", *(f"c{i}" for i in range(max(1, len(header) - 1))))


def _require_images(source: Path, refs: Iterator[tuple[CsvRow, str, str, str]]) -> None:
    """Fail naming the first referenced image that is not a file (its line, column, id and expected path)."""
    by_path: dict[str, tuple[CsvRow, str, str, str]] = {}
    for ref in refs:
        by_path.setdefault(ref[3], ref)
    missing = find_missing(by_path)
    if missing:
        row, column, image_id, path = by_path[missing[0]]
        more = f"; {len(missing)} referenced images are missing in all" if len(missing) > 1 else ""
        raise DatasetError(f"{source}: line {row.line}: no image for {column} id {image_id!r} at {path}{more}")
