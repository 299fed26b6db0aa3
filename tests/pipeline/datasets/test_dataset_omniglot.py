"""Omniglot adapter: set folders, characters and drawers, within-alphabet one-shot tasks, official runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets import LabelledImage, OneShotTask, load_official_runs, load_omniglot

SMALL1 = "images_background_small1"


def _drawer(path: str) -> int:
    """The DD of NNNN_DD.png."""
    return int(Path(path).stem.split("_")[1])


def test_a_set_folder_as_root(omniglot_root: Path) -> None:
    dataset = load_omniglot(omniglot_root / SMALL1)
    characters = dataset.characters()
    assert dataset.alphabets() == ["Alpha", "Beta"]
    assert len(characters) == 9 and len(dataset.images()) == 36
    first = characters[0]
    assert (first.alphabet, first.label, first.drawers) == ("Alpha", "Alpha/character01", (1, 2, 3, 4))
    assert first.path(3) == str(omniglot_root / SMALL1 / "Alpha/character01/0001_03.png")
    assert dataset.images()[0] == LabelledImage(first.path(1), "Alpha/character01")
    with pytest.raises(KeyError, match="no drawing by drawer 9"):
        first.path(9)


def test_a_folder_of_sets_reads_all_and_the_first_copy_of_a_repeated_alphabet_wins(omniglot_root: Path) -> None:
    dataset = load_omniglot(omniglot_root)
    assert [s.name for s in dataset.sets] == [SMALL1, "images_background_small2"]
    assert dataset.alphabets() == ["Alpha", "Beta", "Gamma"]
    assert dataset.shadowed == ("images_background_small2/Alpha",)
    alpha = [c for c in dataset.characters() if c.alphabet == "Alpha"]
    assert len(alpha) == 6 and all(SMALL1 in c.path(1) for c in alpha)


def test_choosing_sets(omniglot_root: Path) -> None:
    assert load_omniglot(omniglot_root, ["images_background_small2"]).alphabets() == ["Alpha", "Gamma"]
    assert load_omniglot(omniglot_root / SMALL1, [SMALL1]).alphabets() == ["Alpha", "Beta"]
    with pytest.raises(DatasetError, match=r"missing set folder images_evaluation \(have: images_background_small1, "):
        load_omniglot(omniglot_root, ["images_evaluation"])
    with pytest.raises(DatasetError, match="is itself a set folder; pass its parent"):
        load_omniglot(omniglot_root / SMALL1, ["images_background_small2"])


def test_layout_errors_are_named(omniglot_root: Path, tmp_path: Path, write_image: Callable[[Path], Path]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no set folder with <Alphabet>/<character>/\*\.png"):
        load_omniglot(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such folder"):
        load_omniglot(tmp_path / "absent")
    write_image(omniglot_root / SMALL1 / "Beta" / "character02" / "drawing.png")
    with pytest.raises(DatasetError, match=r"drawing\.png: drawing name is not NNNN_DD\.png"):
        load_omniglot(omniglot_root)


def test_oneshot_tasks_are_within_alphabet_with_two_drawers(omniglot_root: Path) -> None:
    dataset = load_omniglot(omniglot_root)
    tasks = dataset.oneshot_tasks(n_way=3, n_tasks=30, seed=5)
    assert len(tasks) == 30
    for task in tasks:
        assert len(task.gallery) == len(set(task.gallery_labels)) == 3
        assert {label.split("/")[0] for label in (*task.gallery_labels, task.query_label)} == {task.alphabet}
        assert task.gallery_labels[task.answer] == task.query_label
        assert task.query.split("/")[-2] == task.gallery[task.answer].split("/")[-2]  # same character folder
        assert len({_drawer(path) for path in task.gallery}) == 1
        assert _drawer(task.query) != _drawer(task.gallery[0])
    assert {t.alphabet for t in tasks} == {"Alpha", "Beta"}  # Gamma has 2 characters < 3
    assert len({t.answer for t in tasks}) > 1


def test_oneshot_tasks_are_deterministic_given_the_seed(omniglot_root: Path) -> None:
    dataset = load_omniglot(omniglot_root)
    tasks = dataset.oneshot_tasks(n_way=4, n_tasks=10, seed=1)
    assert load_omniglot(omniglot_root).oneshot_tasks(n_way=4, n_tasks=10, seed=1) == tasks
    assert dataset.oneshot_tasks(n_way=4, n_tasks=10, seed=2) != tasks


def test_small_alphabets_are_skipped_with_the_reason(omniglot_root: Path) -> None:
    dataset = load_omniglot(omniglot_root)
    assert dataset.skipped_alphabets(n_way=4) == {
        "Beta": "3 characters < n_way=4",
        "Gamma": "2 characters < n_way=4",
    }
    assert {t.alphabet for t in dataset.oneshot_tasks(n_way=4, n_tasks=5)} == {"Alpha"}
    with pytest.raises(DatasetError, match=r"no alphabet has 3 characters \(Gamma: 2 characters < n_way=3\)"):
        dataset.oneshot_tasks(n_way=3, alphabets=["Gamma"])
    with pytest.raises(DatasetError, match=r"no alphabet Klingon \(have: Alpha, Beta, Gamma\)"):
        dataset.oneshot_tasks(alphabets=["Klingon"])
    with pytest.raises(ValueError, match="n_way >= 2"):
        dataset.oneshot_tasks(n_way=1)


def test_alphabet_filter(omniglot_root: Path) -> None:
    tasks = load_omniglot(omniglot_root).oneshot_tasks(n_way=2, n_tasks=6, alphabets=["Gamma", "Beta"])
    assert [t.alphabet for t in tasks] == ["Beta", "Gamma"] * 3


def _write_run(root: Path, run: str, answers: list[int], write_image: Callable[[Path], Path]) -> None:
    """A Lake et al. run: training/classKK.png, test/itemMM.png and class_labels.txt mapping items to classes."""
    lines = []
    for item, klass in enumerate(answers, start=1):
        write_image(root / run / "test" / f"item{item:02d}.png")
        write_image(root / run / "training" / f"class{klass:02d}.png")
        lines.append(f"{run}/test/item{item:02d}.png {run}/training/class{klass:02d}.png")
    (root / run / "class_labels.txt").write_text("\n".join(lines) + "\n")


def test_official_runs(tmp_path: Path, write_image: Callable[[Path], Path]) -> None:
    runs = tmp_path / "all_runs"
    _write_run(runs, "run01", [2, 3, 1], write_image)
    _write_run(runs, "run02", [1, 3, 2], write_image)
    tasks = load_official_runs(runs)
    assert len(tasks) == 6
    first = tasks[0]
    gallery = tuple(str(runs / "run01" / "training" / f"class{k:02d}.png") for k in (1, 2, 3))
    assert first == OneShotTask(
        alphabet="run01",
        query=str(runs / "run01/test/item01.png"),
        query_label="run01/class02",
        gallery=gallery,
        gallery_labels=("run01/class01", "run01/class02", "run01/class03"),
        answer=1,
    )
    assert [t.answer for t in tasks] == [1, 2, 0, 0, 2, 1]
    assert load_official_runs(runs / "run02") == tasks[3:]


def test_official_runs_errors(tmp_path: Path, write_image: Callable[[Path], Path]) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match=r"nothing: missing run01/class_labels\.txt — expected Lake et al\.'s"):
        load_official_runs(tmp_path / "nothing")
    runs = tmp_path / "all_runs"
    _write_run(runs, "run01", [1, 2], write_image)
    (runs / "run01" / "test" / "item02.png").unlink()
    with pytest.raises(DatasetError, match=r"class_labels\.txt: 1 images it names are missing: .*item02\.png"):
        load_official_runs(runs)
    (runs / "run01" / "class_labels.txt").write_text("run01/test/item01.png\n")
    with pytest.raises(DatasetError, match="line 1 is not"):
        load_official_runs(runs)
