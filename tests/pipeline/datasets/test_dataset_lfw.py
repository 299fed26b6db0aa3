"""LFW adapter: image-folder variants, pair lists with and without count headers, folds, people."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets import LabelledImage, Pair, load_lfw

SAME = ["Ann_Lee\t1\t2", "Ann_Lee\t2\t3", "Bo-Ra_Kim\t1\t2"]
DIFFERENT = ["Ann_Lee\t1\tCy_Young\t1", "Bo-Ra_Kim\t2\tDi_al-Din\t1", "Cy_Young\t1\tDi_al-Din\t1"]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_headerless_view1_list_gives_same_and_different_pairs_in_fold_0(lfw_root: Path) -> None:
    pairs = load_lfw(lfw_root).pairs("DevTrain")
    images = lfw_root / "lfw-deepfunneled"
    assert pairs[0] == Pair(
        str(images / "Ann_Lee/Ann_Lee_0001.jpg"), str(images / "Ann_Lee/Ann_Lee_0002.jpg"), same=True, fold=0
    )
    assert pairs[4] == Pair(
        str(images / "Bo-Ra_Kim/Bo-Ra_Kim_0002.jpg"), str(images / "Di_al-Din/Di_al-Din_0001.jpg"), same=False, fold=0
    )
    assert [p.same for p in pairs] == [True] * 3 + [False] * 3
    assert {p.fold for p in pairs} == {0}
    assert len(load_lfw(lfw_root).pairs("DevTest")) == 2


def test_official_view1_list_with_count_line(lfw_root: Path) -> None:
    _write(lfw_root / "pairsDevTrain.txt", ["3", *SAME, *DIFFERENT])
    pairs = load_lfw(lfw_root).pairs("DevTrain")
    assert [p.same for p in pairs] == [True] * 3 + [False] * 3
    assert {p.fold for p in pairs} == {0}


def test_view2_header_assigns_folds_of_same_then_different(lfw_root: Path) -> None:
    # 2 folds × (2 same + 2 different): fold 0 = lines 2-5, fold 1 = lines 6-9.
    _write(lfw_root / "pairs.txt", ["2\t2", *SAME[:2], *DIFFERENT[:2], SAME[2], SAME[0], *DIFFERENT[1:]])
    pairs = load_lfw(lfw_root).pairs("View2")
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[4].left.endswith("Bo-Ra_Kim_0001.jpg")


def test_header_counts_and_order_are_checked(lfw_root: Path) -> None:
    dataset = load_lfw(lfw_root)
    _write(lfw_root / "pairs.txt", ["2\t2", *SAME, *DIFFERENT])
    with pytest.raises(DatasetError, match=r"header says 2 fold\(s\) × \(2 same \+ 2 different\) = 8 pairs, .* has 6"):
        dataset.pairs("View2")
    _write(lfw_root / "pairs.txt", ["1 3", SAME[0], DIFFERENT[0], *SAME[1:], *DIFFERENT[1:]])
    with pytest.raises(DatasetError, match=r"pairs\.txt: line 3 should be a same-person 'name i j' pair of fold 0"):
        dataset.pairs("View2")


def test_malformed_lines_are_named(lfw_root: Path) -> None:
    dataset = load_lfw(lfw_root)
    _write(lfw_root / "pairsDevTrain.txt", [SAME[0], "Ann_Lee\t1"])
    with pytest.raises(DatasetError, match=r"line 2 is 'Ann_Lee 1'; expected 'name i j' or 'name1 i name2 j'"):
        dataset.pairs("DevTrain")
    _write(lfw_root / "pairsDevTrain.txt", ["Ann_Lee\t1\tx"])
    with pytest.raises(DatasetError, match="line 1 has image numbers"):
        dataset.pairs("DevTrain")
    _write(lfw_root / "pairsDevTrain.txt", [])
    with pytest.raises(DatasetError, match="empty pair list"):
        dataset.pairs("DevTrain")


def test_missing_image_is_an_error_unless_not_strict(lfw_root: Path) -> None:
    (lfw_root / "lfw-deepfunneled" / "Cy_Young" / "Cy_Young_0001.jpg").unlink()
    dataset = load_lfw(lfw_root)
    with pytest.raises(DatasetError, match=r"pairsDevTrain\.txt: 1 images its pairs name are missing: .*Cy_Young_0001"):
        dataset.pairs("DevTrain")
    with pytest.warns(UserWarning, match="dropped 2 of 6 pairs whose images are missing"):
        kept = dataset.pairs("DevTrain", strict=False)
    assert len(kept) == 4 and not any("Cy_Young" in p.left + p.right for p in kept)


@pytest.mark.parametrize("folder", ["lfw-deepfunneled", "lfw", "lfw-funneled"])
def test_accepted_image_folder_names(lfw_root: Path, folder: str) -> None:
    if folder != "lfw-deepfunneled":
        (lfw_root / "lfw-deepfunneled").rename(lfw_root / folder)
    dataset = load_lfw(lfw_root)
    assert dataset.images == lfw_root / folder
    assert len(dataset.pairs("DevTrain")) == 6


def test_root_may_be_the_image_folder_with_lists_beside_it(lfw_root: Path) -> None:
    dataset = load_lfw(lfw_root / "lfw-deepfunneled")
    assert dataset.images == lfw_root / "lfw-deepfunneled"
    assert dataset.pair_file("DevTrain") == lfw_root / "pairsDevTrain.txt"
    assert len(dataset.pairs("DevTrain")) == 6


def test_archive_nesting_the_folder_in_its_own_name(lfw_root: Path, tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    shutil.copytree(lfw_root / "lfw-deepfunneled", nested / "lfw-deepfunneled" / "lfw-deepfunneled")
    assert load_lfw(nested).images == nested / "lfw-deepfunneled" / "lfw-deepfunneled"


def test_missing_image_folder_and_lists_are_named(lfw_root: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: missing lfw-deepfunneled/, lfw/, lfw-funneled/ — expected the LFW"):
        load_lfw(tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"lfw: missing pairs\.txt \(looked in .*lfw\) — expected the LFW layout"):
        load_lfw(lfw_root).pairs("View2")
    with pytest.raises(DatasetError, match="no such pair list; pass one of DevTrain, DevTest, View2"):
        load_lfw(lfw_root).pairs("View3")


def test_pair_list_by_path(lfw_root: Path, tmp_path: Path) -> None:
    custom = _write(tmp_path / "mine.txt", ["1", SAME[0], DIFFERENT[0]])
    assert [p.same for p in load_lfw(lfw_root).pairs(str(custom))] == [True, False]


def test_people_images_are_labelled_by_person_and_limited(lfw_root: Path) -> None:
    dataset = load_lfw(lfw_root)
    (lfw_root / "lfw-deepfunneled" / "Ann_Lee" / "notes.txt").write_text("x")
    everyone = dataset.people_images()
    assert len(everyone) == 7
    assert everyone[0] == LabelledImage(str(lfw_root / "lfw-deepfunneled/Ann_Lee/Ann_Lee_0001.jpg"), "Ann_Lee")
    assert [image.label for image in dataset.people_images(limit_people=2)] == ["Ann_Lee"] * 3 + ["Bo-Ra_Kim"] * 2
    with pytest.raises(ValueError, match="limit_people"):
        dataset.people_images(limit_people=-1)
