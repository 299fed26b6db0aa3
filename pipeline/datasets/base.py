"""Task records shared by the benchmark adapters, root resolution and layout checks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError

SHOWN_MISSING = 5  # how many missing files an error message names before it just counts


@dataclass(frozen=True)
class LabelledImage:
    """An image path and the identity it shows (person, character, class)."""

    path: str
    label: str


@dataclass(frozen=True)
class Pair:
    """A verification pair of image paths; `same` is True when both show one identity."""

    left: str
    right: str
    same: bool
    fold: int


@dataclass(frozen=True)
class CandidateTask:
    """Pick the candidate that matches the query (TLL's 1-of-20 task).

    Attributes:
        query_id: the query's id (TLL: the left image's id).
        query: the query image path.
        candidate_ids: ids of the candidates, in the order they are presented.
        candidates: candidate image paths, aligned with `candidate_ids`.
        answer: index into `candidates` of the true match; None when unknown (TLL test set).
    """

    query_id: str
    query: str
    candidate_ids: tuple[str, ...]
    candidates: tuple[str, ...]
    answer: int | None

    def __post_init__(self) -> None:
        if len(self.candidate_ids) != len(self.candidates):
            raise ValueError(
                f"CandidateTask {self.query_id}: {len(self.candidate_ids)} ids, {len(self.candidates)} paths"
            )
        if self.answer is not None and not 0 <= self.answer < len(self.candidates):
            raise ValueError(f"CandidateTask {self.query_id}: answer {self.answer} out of range")


@dataclass(frozen=True)
class OneShotTask:
    """N-way one-shot classification: which gallery image shows the query's class?

    Attributes:
        alphabet: the alphabet (or official run) all gallery classes come from.
        query: the query image path.
        query_label: the query's class label.
        gallery: one image path per class.
        gallery_labels: class labels aligned with `gallery`, all distinct.
        answer: index into `gallery` of the query's class.
    """

    alphabet: str
    query: str
    query_label: str
    gallery: tuple[str, ...]
    gallery_labels: tuple[str, ...]
    answer: int

    def __post_init__(self) -> None:
        if len(self.gallery) != len(self.gallery_labels):
            raise ValueError(f"OneShotTask: {len(self.gallery)} gallery images, {len(self.gallery_labels)} labels")
        if not 0 <= self.answer < len(self.gallery) or self.gallery_labels[self.answer] != self.query_label:
            raise ValueError(f"OneShotTask: answer {self.answer} does not point at {self.query_label!r}")


def resolve_root(
    path: str | os.PathLike[str] | None, env_var: str, default_name: str, *, option: str = "--root"
) -> Path:
    """Find a dataset root: the explicit path, else `$env_var`, else `../shared/datasets/<default_name>`.

    The fallback is relative to the current working directory, so running from the project root finds the
    shared benchmark copies.

    Args:
        path: a root the user gave explicitly, or None.
        env_var: environment variable to consult next (e.g. LOOKALIKE_TLL).
        default_name: folder name under ../shared/datasets (e.g. "tll").
        option: the CLI option that sets the root, named in the error message.

    Returns:
        The root folder (not yet checked for the dataset's layout; the loaders do that).

    Raises:
        DatasetError: the given or configured root is not a folder, or no root was given and the default is absent.
    """
    if path is not None:
        return _existing_folder(Path(path), f"the {default_name} root given")
    configured = os.environ.get(env_var)
    if configured:
        return _existing_folder(Path(configured), f"${env_var}")
    default = Path.cwd() / ".." / "shared" / "datasets" / default_name
    if default.is_dir():
        return default.resolve()
    raise DatasetError(
        f"no {default_name} dataset root: pass {option} PATH or set {env_var} (looked for {default.resolve()})"
    )


def _existing_folder(root: Path, origin: str) -> Path:
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise DatasetError(f"{root}: {what} ({origin})")
    return root


def check_layout(root: Path, required: Sequence[str], layout: str) -> None:
    """Fail unless every relative path in `required` exists under `root`.

    Raises:
        DatasetError: one line naming the root, everything missing, and the expected layout.
    """
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise DatasetError(f"{root}: {what} — expected {layout}")
    missing = [name for name in required if not (root / name).exists()]
    if missing:
        raise DatasetError(f"{root}: missing {', '.join(missing)} — expected {layout}")


def missing_files_error(where: str, missing: Sequence[str], what: str) -> DatasetError:
    """A one-line error naming the first few of `missing` and how many there are in all."""
    shown = ", ".join(missing[:SHOWN_MISSING])
    more = f" (first {SHOWN_MISSING} shown)" if len(missing) > SHOWN_MISSING else ""
    return DatasetError(f"{where}: {len(missing)} {what} missing: {shown}{more}")


def find_missing(paths: Iterable[str]) -> list[str]:
    """The paths that are not files, in first-seen order without repeats."""
    seen: set[str] = set()
    missing: list[str] = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            if not os.path.isfile(path):
                missing.append(path)
    return missing


def visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders of `folder` whose names do not start with a dot, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
