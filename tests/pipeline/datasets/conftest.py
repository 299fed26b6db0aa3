"""Tiny synthetic copies of the benchmark layouts (TLL, LFW, Omniglot), written with Pillow into tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ImageWriter = Callable[[Path], Path]

TLL_TRAIN = [(f"l{i:02d}", f"r{i:02d}") for i in range(9)] + [("nan", "tru")]  # ids a CSV reader might coerce
TLL_TEST_LEFTS = ("q00", "q01", "q02")
TLL_TEST_RIGHTS = tuple(f"c{i:02d}" for i in range(6))
TLL_TEST_CANDIDATES = 4

LFW_PEOPLE = {"Ann_Lee": 3, "Bo-Ra_Kim": 2, "Cy_Young": 1, "Di_al-Din": 1}
LFW_SAME = ("Ann_Lee\t1\t2", "Ann_Lee\t2\t3", "Bo-Ra_Kim\t1\t2")
LFW_DIFFERENT = ("Ann_Lee\t1\tCy_Young\t1", "Bo-Ra_Kim\t2\tDi_al-Din\t1", "Cy_Young\t1\tDi_al-Din\t1")

OMNIGLOT_SET = "images_background_small1"
OMNIGLOT_ALPHABETS = {"Alpha": 6, "Beta": 3}  # characters per alphabet in OMNIGLOT_SET
OMNIGLOT_DRAWERS = 4


def _write_image(path: Path, seed: int = 0) -> Path:
    """A 6×6 seeded noise image; the format follows the suffix (1-bit for .png, like Omniglot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    (image.convert("1") if path.suffix == ".png" else image).save(path)
    return path


@pytest.fixture
def write_image() -> ImageWriter:
    """Write a tiny image at the given path (parents created)."""
    return _write_image


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.fixture
def tll_root(tmp_path: Path) -> Path:
    """A COMP90086 layout: 10 training pairs, 3 test rows × 4 candidates drawn from 6 right images."""
    root = tmp_path / "tll"
    _write_lines(root / "train.csv", ["left,right", *(f"{left},{right}" for left, right in TLL_TRAIN)])
    for seed, (left, right) in enumerate(TLL_TRAIN):
        _write_image(root / "train" / "left" / f"{left}.jpg", seed)
        _write_image(root / "train" / "right" / f"{right}.jpg", 100 + seed)
    header = ",".join(["left", *(f"c{i}" for i in range(TLL_TEST_CANDIDATES))])
    rows = [",".join([left, *TLL_TEST_RIGHTS[k : k + TLL_TEST_CANDIDATES]]) for k, left in enumerate(TLL_TEST_LEFTS)]
    _write_lines(root / "test_candidates.csv", [header, *rows])
    for seed, image_id in enumerate(TLL_TEST_LEFTS):
        _write_image(root / "test" / "left" / f"{image_id}.jpg", 200 + seed)
    for seed, image_id in enumerate(TLL_TEST_RIGHTS):
        _write_image(root / "test" / "right" / f"{image_id}.jpg", 300 + seed)
    (root / "test" / ".DS_Store").write_bytes(b"\0")  # the real copy has one; it must be ignored
    return root


@pytest.fixture
def lfw_root(tmp_path: Path) -> Path:
    """An LFW root: lfw-deepfunneled/<Name>/<Name>_<NNNN>.jpg and headerless View-1 lists (3 same + 3 different)."""
    root = tmp_path / "lfw"
    seed = 0
    for name, count in LFW_PEOPLE.items():
        for number in range(1, count + 1):
            seed += 1
            _write_image(root / "lfw-deepfunneled" / name / f"{name}_{number:04d}.jpg", seed)
    _write_lines(root / "pairsDevTrain.txt", [*LFW_SAME, *LFW_DIFFERENT])
    _write_lines(root / "pairsDevTest.txt", [LFW_SAME[0], LFW_DIFFERENT[0]])
    return root


def _write_alphabet(set_folder: Path, alphabet: str, n_characters: int, first_number: int) -> None:
    for c in range(n_characters):
        for drawer in range(1, OMNIGLOT_DRAWERS + 1):
            name = f"{first_number + c:04d}_{drawer:02d}.png"
            _write_image(set_folder / alphabet / f"character{c + 1:02d}" / name, first_number + c * 31 + drawer)


@pytest.fixture
def omniglot_root(tmp_path: Path) -> Path:
    """A folder of two Omniglot sets; the second repeats Alpha (as small1/small2 repeat Greek and Latin)."""
    root = tmp_path / "omniglot"
    number = 1
    for alphabet, n_characters in OMNIGLOT_ALPHABETS.items():
        _write_alphabet(root / OMNIGLOT_SET, alphabet, n_characters, number)
        number += n_characters
    _write_alphabet(root / "images_background_small2", "Alpha", OMNIGLOT_ALPHABETS["Alpha"], 1)
    _write_alphabet(root / "images_background_small2", "Gamma", 2, 500)
    return root
