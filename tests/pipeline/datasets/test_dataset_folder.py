"""Folder-per-label galleries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets import LabelledImage, load_folder


def test_labels_are_sub_folders_and_top_level_images_are_left_out(
    tmp_path: Path, write_image: Callable[[Path], Path]
) -> None:
    write_image(tmp_path / "cats" / "b.jpg")
    write_image(tmp_path / "cats" / "a.png")
    write_image(tmp_path / "dogs" / "pugs" / "c.jpg")
    write_image(tmp_path / "loose.jpg")
    (tmp_path / "cats" / "notes.txt").write_text("x")
    assert load_folder(tmp_path) == [
        LabelledImage(str(tmp_path / "cats" / "a.png"), "cats"),
        LabelledImage(str(tmp_path / "cats" / "b.jpg"), "cats"),
        LabelledImage(str(tmp_path / "dogs" / "pugs" / "c.jpg"), "dogs/pugs"),
    ]


def test_folder_errors(tmp_path: Path, write_image: Callable[[Path], Path]) -> None:
    with pytest.raises(DatasetError, match="absent: no such folder — expected a folder per label"):
        load_folder(tmp_path / "absent")
    write_image(tmp_path / "flat" / "x.jpg")
    with pytest.raises(DatasetError, match=r"flat: no images in sub-folders \(1 at the top level\)"):
        load_folder(tmp_path / "flat")
