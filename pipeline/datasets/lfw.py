"""Labeled Faces in the Wild: the image folder, View 1/View 2 pair lists (with or without count header), people."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError
from pipeline.datasets.base import LabelledImage, Pair, check_layout, find_missing, missing_files_error, visible_dirs

LFW_ENV = "LOOKALIKE_LFW"
IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw", "lfw-funneled")  # first found wins
PAIR_FILES = {"DevTrain": "pairsDevTrain.txt", "DevTest": "pairsDevTest.txt", "View2": "pairs.txt"}
LFW_LAYOUT = (
    "the LFW layout: lfw-deepfunneled/<Name>/<Name>_<NNNN>.jpg (or lfw/, lfw-funneled/, or the image folder "
    "itself) next to pairsDevTrain.txt, pairsDevTest.txt, pairs.txt"
)


@dataclass(frozen=True)
class _PairLine:
    """One parsed line of a pair list: two (name, 1-based image number) and its fold."""

    line_no: int
    first: tuple[str, int]
    second: tuple[str, int]
    fold: int

    @property
    def same(self) -> bool:
        return self.first[0] == self.second[0]


@dataclass(frozen=True)
class LfwDataset:
    """A validated LFW root; build it with `load_lfw`.

    Attributes:
        root: the folder the user gave.
        images: the image folder holding `<Name>/<Name>_<NNNN>.jpg`.
    """

    root: Path
    images: Path

    def image_path(self, name: str, number: int) -> str:
        """Path of a person's image, e.g. image_path("Aaron_Peirsol", 1) → …/Aaron_Peirsol/Aaron_Peirsol_0001.jpg."""
        return str(self.images / name / f"{name}_{number:04d}.jpg")

    def pair_file(self, name: str) -> Path:
        """The pair list for "DevTrain", "DevTest", "View2", or a path to any file in the LFW pairs format.

        Named lists are looked for in the root and, when the root is the image folder itself, in its parent.

        Raises:
            DatasetError: the named list is in neither place, or the path is not a file.
        """
        if name in PAIR_FILES:
            places = [self.root] if self.images != self.root else [self.root, self.root.parent]
            for place in places:
                if (place / PAIR_FILES[name]).is_file():
                    return place / PAIR_FILES[name]
            looked = " or ".join(str(place) for place in places)
            raise DatasetError(f"{self.root}: missing {PAIR_FILES[name]} (looked in {looked}) — expected {LFW_LAYOUT}")
        path = Path(name)
        if not path.is_file():
            known = ", ".join(PAIR_FILES)
            raise DatasetError(f"{name}: no such pair list; pass one of {known} or the path of a pairs file")
        return path

    def pairs(self, name: str = "DevTrain", strict: bool = True) -> list[Pair]:
        """Read a pair list: `name i j` lines are same-person pairs, `name1 i name2 j` lines different-person ones.

        Files whose first line is a count are the official ones: `N` (View 1: N same then N different pairs,
        fold 0) or `F N` (View 2: F folds, each N same then N different pairs, fold = 0..F−1). Files without
        that line (the copies in ../shared/datasets/lfw) put every pair in fold 0.

        Args:
            name: "DevTrain", "DevTest", "View2", or a path to a pairs file.
            strict: if True, an image a pair names that is not on disk is an error; if False such pairs are
                dropped and a warning gives how many.

        Raises:
            DatasetError: the list is missing or malformed (message gives the line), the header count does not
                match, or (strict) referenced images are missing.
        """
        path = self.pair_file(name)
        pairs = [
            Pair(self.image_path(*line.first), self.image_path(*line.second), line.same, line.fold)
            for line in _parse_pair_file(path)
        ]
        missing = find_missing(p for pair in pairs for p in (pair.left, pair.right))
        if not missing:
            return pairs
        if strict:
            raise missing_files_error(str(path), missing, "images its pairs name are")
        absent = set(missing)
        kept = [pair for pair in pairs if pair.left not in absent and pair.right not in absent]
        warnings.warn(
            f"{path}: dropped {len(pairs) - len(kept)} of {len(pairs)} pairs whose images are missing "
            f"(first: {missing[0]})",
            stacklevel=2,
        )
        return kept

    def people_images(self, limit_people: int | None = None) -> list[LabelledImage]:
        """Every image, labelled with the person's folder name; people in name order, the first `limit_people`.

        Raises:
            ValueError: limit_people is negative.
        """
        if limit_people is not None and limit_people < 0:
            raise ValueError(f"limit_people must be >= 0, got {limit_people}")
        people = visible_dirs(self.images)[:limit_people]
        return [
            LabelledImage(str(path), person.name)
            for person in people
            for path in sorted(person.iterdir())
            if path.suffix.lower() == ".jpg" and not path.name.startswith(".")
        ]


def load_lfw(root: str | os.PathLike[str]) -> LfwDataset:
    """Open an LFW root: a folder holding lfw-deepfunneled/ (or lfw/, lfw-funneled/), or the image folder itself.

    Raises:
        DatasetError: the root is not a folder or holds no LFW image folder.
    """
    path = Path(root)
    check_layout(path, (), LFW_LAYOUT)
    for name in IMAGE_FOLDERS:
        images = path / name
        if (images / name).is_dir() and _looks_like_images(images / name):
            return LfwDataset(path, images / name)  # some archives nest the folder in one of the same name
        if images.is_dir():
            return LfwDataset(path, images)
    if _looks_like_images(path):
        return LfwDataset(path, path)
    raise DatasetError(f"{path}: missing {'/, '.join(IMAGE_FOLDERS)}/ — expected {LFW_LAYOUT}")


def _looks_like_images(folder: Path) -> bool:
    """True if one of the first few sub-folders holds `<folder name>_0001.jpg`, as every LFW person does."""
    return any((person / f"{person.name}_0001.jpg").is_file() for person in visible_dirs(folder)[:5])


def _parse_pair_file(path: Path) -> list[_PairLine]:
    """Parse an LFW pair list (whitespace-separated, with or without the count header line).

    Raises:
        DatasetError: a line is not `name i j` / `name1 i name2 j`, or the header's counts do not match the body.
    """
    lines = [(no, text.split()) for no, text in enumerate(path.read_text().splitlines(), start=1) if text.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty pair list")
    folds, per_fold = _header(lines[0][1])
    body = lines[1:] if per_fold else lines
    block = 2 * per_fold or len(body) + 1  # pairs per fold; headerless lists are one fold 0
    parsed = [_parse_line(path, no, tokens, fold=k // block) for k, (no, tokens) in enumerate(body)]
    if per_fold:
        _check_counts(path, parsed, folds, per_fold)
    return parsed


def _header(tokens: Sequence[str]) -> tuple[int, int]:
    """(folds, pairs of each kind per fold) from a count line; (0, 0) when the line is a pair, not a header."""
    if len(tokens) == 1 and tokens[0].isdigit():
        return 1, int(tokens[0])
    if len(tokens) == 2 and all(token.isdigit() for token in tokens):
        return int(tokens[0]), int(tokens[1])
    return 0, 0


def _parse_line(path: Path, line_no: int, tokens: Sequence[str], *, fold: int) -> _PairLine:
    if len(tokens) == 3:
        names, numbers = (tokens[0], tokens[0]), (tokens[1], tokens[2])
    elif len(tokens) == 4:
        names, numbers = (tokens[0], tokens[2]), (tokens[1], tokens[3])
    else:
        raise DatasetError(f"{path}: line {line_no} is {' '.join(tokens)!r}; expected 'name i j' or 'name1 i name2 j'")
    if not all(number.isdigit() and int(number) > 0 for number in numbers):
        raise DatasetError(f"{path}: line {line_no} has image numbers {numbers}; expected positive integers")
    return _PairLine(line_no, (names[0], int(numbers[0])), (names[1], int(numbers[1])), fold)


def _check_counts(path: Path, parsed: Sequence[_PairLine], folds: int, per_fold: int) -> None:
    """Official lists hold, per fold, `per_fold` same pairs then `per_fold` different ones."""
    if len(parsed) != folds * 2 * per_fold:
        raise DatasetError(
            f"{path}: header says {folds} fold(s) × ({per_fold} same + {per_fold} different) = "
            f"{folds * 2 * per_fold} pairs, but the file has {len(parsed)}"
        )
    for k, line in enumerate(parsed):
        expect_same = k % (2 * per_fold) < per_fold
        if line.same != expect_same:
            kind = "same-person 'name i j'" if expect_same else "different-person 'name1 i name2 j'"
            raise DatasetError(f"{path}: line {line.line_no} should be a {kind} pair of fold {line.fold}")
