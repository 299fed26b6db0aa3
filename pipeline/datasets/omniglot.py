"""Omniglot: alphabet/character/drawer folders, within-alphabet N-way one-shot tasks, Lake et al.'s official runs."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError
from pipeline.datasets.base import (
    LabelledImage,
    OneShotTask,
    check_layout,
    find_missing,
    missing_files_error,
    visible_dirs,
)

OMNIGLOT_ENV = "LOOKALIKE_OMNIGLOT"
OMNIGLOT_LAYOUT = (
    "the Omniglot layout: <set>/<Alphabet>/<character>/<NNNN_DD>.png (DD = drawer), where the root is one set "
    "folder (e.g. images_background_small1) or holds several"
)
RUNS_LAYOUT = "Lake et al.'s one-shot runs: runNN/class_labels.txt, runNN/training/classNN.png, runNN/test/itemNN.png"
# NNNN numbers the character across the whole dataset (the same in every drawer's file); DD is the drawer 01..20.
DRAWING_NAME = re.compile(r"(?P<character>\d+)_(?P<drawer>\d+)\.png")


@dataclass(frozen=True)
class OmniglotCharacter:
    """One character and its drawings.

    Attributes:
        alphabet: the alphabet folder name, e.g. "Greek".
        label: "Alphabet/character", e.g. "Greek/character01" — unique across alphabets.
        drawings: (drawer, path) pairs sorted by drawer.
    """

    alphabet: str
    label: str
    drawings: tuple[tuple[int, str], ...]

    @property
    def drawers(self) -> tuple[int, ...]:
        return tuple(drawer for drawer, _ in self.drawings)

    def path(self, drawer: int) -> str:
        """The path of this character as `drawer` drew it. Raises KeyError if that drawer is absent."""
        for number, path in self.drawings:
            if number == drawer:
                return path
        raise KeyError(f"{self.label}: no drawing by drawer {drawer}")


@dataclass(frozen=True)
class OmniglotDataset:
    """Characters scanned from one or more Omniglot set folders; build it with `load_omniglot`.

    Attributes:
        root: the folder the user gave.
        sets: the set folders read, in order.
        all_characters: every character, sorted by label.
        shadowed: "set/Alphabet" folders skipped because an earlier set already holds that alphabet
            (the small background sets both contain Greek and Latin, file for file).
    """

    root: Path
    sets: tuple[Path, ...]
    all_characters: tuple[OmniglotCharacter, ...]
    shadowed: tuple[str, ...] = ()

    def characters(self) -> list[OmniglotCharacter]:
        """Every character, sorted by label."""
        return list(self.all_characters)

    def alphabets(self) -> list[str]:
        """Alphabet names, sorted."""
        return sorted({character.alphabet for character in self.all_characters})

    def images(self) -> list[LabelledImage]:
        """Every drawing, labelled "Alphabet/character"."""
        return [LabelledImage(path, c.label) for c in self.all_characters for _, path in c.drawings]

    def skipped_alphabets(self, n_way: int, alphabets: Sequence[str] | None = None) -> dict[str, str]:
        """Alphabets `oneshot_tasks` would skip for this n_way, each with the reason."""
        grouped = self._by_alphabet(alphabets)
        return {
            name: f"{len(chars)} characters < n_way={n_way}" for name, chars in grouped.items() if len(chars) < n_way
        }

    def oneshot_tasks(
        self, n_way: int = 20, n_tasks: int = 400, seed: int = 0, alphabets: Sequence[str] | None = None
    ) -> list[OneShotTask]:
        """Within-alphabet N-way one-shot tasks (Lake et al. 2015; Koch et al. 2015).

        Each task takes one alphabet (round robin over the eligible ones, in name order), n_way of its characters
        and two distinct drawers A and B: the gallery is every chosen character drawn by A, the query one of them
        drawn by B. Alphabets with fewer than n_way characters are skipped (see `skipped_alphabets`). The same
        seed gives the same tasks.

        Raises:
            ValueError: n_way < 2 or n_tasks < 0.
            DatasetError: an unknown alphabet was asked for, no alphabet has n_way characters, or the chosen
                characters share fewer than two drawers.
        """
        if n_way < 2 or n_tasks < 0:
            raise ValueError(f"need n_way >= 2 and n_tasks >= 0, got n_way={n_way}, n_tasks={n_tasks}")
        grouped = self._by_alphabet(alphabets)
        eligible = sorted(name for name, chars in grouped.items() if len(chars) >= n_way)
        if not eligible:
            reasons = "; ".join(f"{name}: {why}" for name, why in self.skipped_alphabets(n_way, alphabets).items())
            raise DatasetError(f"{self.root}: no alphabet has {n_way} characters ({reasons})")
        rng = random.Random(seed)
        return [_oneshot_task(grouped[eligible[t % len(eligible)]], n_way, rng) for t in range(n_tasks)]

    def _by_alphabet(self, alphabets: Sequence[str] | None) -> dict[str, list[OmniglotCharacter]]:
        grouped: dict[str, list[OmniglotCharacter]] = {}
        for character in self.all_characters:
            grouped.setdefault(character.alphabet, []).append(character)
        if alphabets is None:
            return grouped
        unknown = [name for name in alphabets if name not in grouped]
        if unknown:
            raise DatasetError(f"{self.root}: no alphabet {', '.join(unknown)} (have: {', '.join(sorted(grouped))})")
        return {name: grouped[name] for name in alphabets}


def _oneshot_task(characters: Sequence[OmniglotCharacter], n_way: int, rng: random.Random) -> OneShotTask:
    chosen = rng.sample(list(characters), n_way)
    common = sorted(set.intersection(*(set(c.drawers) for c in chosen)))
    if len(common) < 2:
        raise DatasetError(f"{chosen[0].alphabet}: the chosen characters share {len(common)} drawer(s); need 2")
    drawer_a, drawer_b = rng.sample(common, 2)
    answer = rng.randrange(n_way)
    return OneShotTask(
        alphabet=chosen[0].alphabet,
        query=chosen[answer].path(drawer_b),
        query_label=chosen[answer].label,
        gallery=tuple(c.path(drawer_a) for c in chosen),
        gallery_labels=tuple(c.label for c in chosen),
        answer=answer,
    )


def load_omniglot(root: str | os.PathLike[str], sets: Sequence[str] | None = None) -> OmniglotDataset:
    """Scan an Omniglot root: one set folder, or a folder of set folders (all of them, or those named in `sets`).

    When two sets hold the same alphabet, the first set (in `sets` order, else name order) wins.

    Raises:
        DatasetError: the root is not a folder, holds no set, lacks a named set, or a drawing is misnamed.
    """
    path = Path(root)
    chosen = _choose_sets(path, sets)
    characters: list[OmniglotCharacter] = []
    shadowed: list[str] = []
    seen: set[str] = set()
    for set_folder in chosen:
        for alphabet in visible_dirs(set_folder):
            if alphabet.name in seen:
                shadowed.append(f"{set_folder.name}/{alphabet.name}")
                continue
            seen.add(alphabet.name)
            characters.extend(_scan_character(alphabet.name, folder) for folder in visible_dirs(alphabet))
    return OmniglotDataset(path, tuple(chosen), tuple(sorted(characters, key=lambda c: c.label)), tuple(shadowed))


def _choose_sets(root: Path, sets: Sequence[str] | None) -> list[Path]:
    check_layout(root, (), OMNIGLOT_LAYOUT)
    if _is_set(root):
        if sets is not None and list(sets) != [root.name]:
            raise DatasetError(f"{root}: is itself a set folder; pass its parent to choose sets {', '.join(sets)}")
        return [root]
    available = [folder for folder in visible_dirs(root) if _is_set(folder)]
    if sets is None:
        if not available:
            raise DatasetError(f"{root}: no set folder with <Alphabet>/<character>/*.png — expected {OMNIGLOT_LAYOUT}")
        return available
    missing = [name for name in sets if not _is_set(root / name)]
    if missing:
        have = ", ".join(folder.name for folder in available) or "none"
        raise DatasetError(
            f"{root}: missing set folder {', '.join(missing)} (have: {have}) — expected {OMNIGLOT_LAYOUT}"
        )
    return [root / name for name in sets]


def _is_set(folder: Path) -> bool:
    """True if the first alphabet's first character folder holds a .png."""
    if not folder.is_dir():
        return False
    alphabets = visible_dirs(folder)
    characters = visible_dirs(alphabets[0]) if alphabets else []
    return bool(characters) and any(p.suffix.lower() == ".png" for p in characters[0].iterdir())


def _scan_character(alphabet: str, folder: Path) -> OmniglotCharacter:
    drawings: dict[int, str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".png":
            continue
        match = DRAWING_NAME.fullmatch(path.name)
        if match is None:
            raise DatasetError(f"{path}: drawing name is not NNNN_DD.png (DD = drawer) — expected {OMNIGLOT_LAYOUT}")
        drawer = int(match["drawer"])
        if drawer in drawings:
            raise DatasetError(f"{folder}: drawer {drawer} appears twice ({drawings[drawer]}, {path})")
        drawings[drawer] = str(path)
    if not drawings:
        raise DatasetError(f"{folder}: no drawings (NNNN_DD.png) — expected {OMNIGLOT_LAYOUT}")
    return OmniglotCharacter(alphabet, f"{alphabet}/{folder.name}", tuple(sorted(drawings.items())))


def load_official_runs(root: str | os.PathLike[str]) -> list[OneShotTask]:
    """Read Lake et al.'s 20-way one-shot runs: 20 tasks per run (one per class_labels.txt line), runs in order.

    `root` holds run01, run02, … (the official `all_runs` folder) or is one run folder. Each line of
    `class_labels.txt` is `runNN/test/itemMM.png runNN/training/classKK.png`, relative to the runs' parent;
    the gallery is the run's training images in name order, as in the official scoring code.

    Raises:
        DatasetError: no run folder, a malformed class_labels.txt line, or images it names are missing.
    """
    path = Path(root)
    if (path / "class_labels.txt").is_file():
        runs = [path]
    elif path.is_dir():
        runs = [d for d in visible_dirs(path) if re.fullmatch(r"run\d+", d.name) and (d / "class_labels.txt").is_file()]
    else:
        runs = []
    if not runs:
        raise DatasetError(f"{path}: missing run01/class_labels.txt — expected {RUNS_LAYOUT}")
    return [task for run in runs for task in _read_run(run)]


def _read_run(run: Path) -> list[OneShotTask]:
    labels_file = run / "class_labels.txt"
    lines = [(no, text.split()) for no, text in enumerate(labels_file.read_text().splitlines(), 1) if text.strip()]
    bad = [no for no, tokens in lines if len(tokens) != 2]
    if bad:
        raise DatasetError(f"{labels_file}: line {bad[0]} is not 'runNN/test/itemMM.png runNN/training/classKK.png'")
    pairs = [(str(run.parent / test), str(run.parent / train)) for _, (test, train) in lines]
    missing = find_missing(p for pair in pairs for p in pair)
    if missing:
        raise missing_files_error(str(labels_file), missing, "images it names are")
    gallery = tuple(sorted({train for _, train in pairs}))
    labels = tuple(f"{run.name}/{Path(path).stem}" for path in gallery)
    return [
        OneShotTask(run.name, test, labels[gallery.index(train)], gallery, labels, gallery.index(train))
        for test, train in pairs
    ]
