"""Totally-Looks-Like adapter: layout checks, pairs, seeded splits and 1-of-N tasks, test tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.datasets import CandidateTask, TllPair, candidate_tasks, load_tll
from pipeline.errors import DatasetError

LAYOUT = "expected the COMP90086 layout: train.csv, train/left, train/right, test_candidates.csv, test/left, test/right"


def _check_task(task: CandidateTask, pair: TllPair, rights: dict[str, str]) -> None:
    """The invariants of a local validation task built from `pair`."""
    assert task.query_id == pair.left_id and task.query == pair.left
    assert task.answer is not None
    assert task.candidate_ids[task.answer] == pair.right_id and task.candidates[task.answer] == pair.right
    assert task.candidate_ids.count(pair.right_id) == 1
    assert len(set(task.candidate_ids)) == len(task.candidate_ids)
    assert all(rights[image_id] == path for image_id, path in zip(task.candidate_ids, task.candidates, strict=True))


def test_missing_parts_are_named_with_the_expected_layout(tll_root: Path) -> None:
    (tll_root / "train.csv").unlink()
    with pytest.raises(DatasetError) as caught:
        load_tll(tll_root)
    assert str(caught.value) == f"{tll_root}: missing train.csv — {LAYOUT}"
    for image in (tll_root / "test" / "right").iterdir():
        image.unlink()
    (tll_root / "test" / "right").rmdir()
    with pytest.raises(DatasetError, match=r"missing train\.csv, test/right — expected"):
        load_tll(tll_root)
    with pytest.raises(DatasetError, match="no such folder"):
        load_tll(tll_root / "absent")


def test_train_pairs_keep_file_order_and_ids_as_text(tll_root: Path) -> None:
    pairs = load_tll(tll_root).train_pairs()
    assert len(pairs) == 10
    assert pairs[0] == TllPair(
        "l00", "r00", str(tll_root / "train/left/l00.jpg"), str(tll_root / "train/right/r00.jpg")
    )
    assert (pairs[-1].left_id, pairs[-1].right_id) == ("nan", "tru")  # not NaN / True


def test_train_pair_with_missing_image_is_named(tll_root: Path) -> None:
    (tll_root / "train" / "right" / "r03.jpg").unlink()
    with pytest.raises(DatasetError, match=r"train\.csv: 1 referenced images are missing: .*train/right/r03\.jpg$"):
        load_tll(tll_root).train_pairs()


def test_train_csv_problems(tll_root: Path) -> None:
    csv = tll_root / "train.csv"
    csv.write_text("left,right\nl00,r00\nl00,r01\n")
    with pytest.raises(DatasetError, match="1 left ids appear more than once: l00"):
        load_tll(tll_root).train_pairs()
    csv.write_text("left,other\nl00,r00\n")
    with pytest.raises(DatasetError, match=r"no right column \(have: left, other\)"):
        load_tll(tll_root).train_pairs()
    csv.write_text("left,right\nl00,\n")
    with pytest.raises(DatasetError, match="line 2 has empty or missing cells"):
        load_tll(tll_root).train_pairs()


def test_split_is_seeded_disjoint_and_complete(tll_root: Path) -> None:
    dataset = load_tll(tll_root)
    train, val = dataset.split_train(seed=7, val_fraction=0.3)
    assert (len(train), len(val)) == (7, 3)
    assert sorted(p.left_id for p in train + val) == sorted(p.left_id for p in dataset.train_pairs())
    assert dataset.split_train(seed=7, val_fraction=0.3) == (train, val)
    assert dataset.split_train(seed=8, val_fraction=0.3)[1] != val
    with pytest.raises(ValueError, match="val_fraction"):
        dataset.split_train(seed=0, val_fraction=1.0)
    with pytest.raises(ValueError, match="empty part"):
        dataset.split_train(seed=0, val_fraction=0.01)


def test_candidate_tasks_hold_the_truth_once_among_distinct_foils(tll_root: Path) -> None:
    pairs = load_tll(tll_root).train_pairs()
    rights = {p.right_id: p.right for p in pairs}
    tasks = candidate_tasks(pairs, n_candidates=5, seed=3)
    assert len(tasks) == len(pairs)
    for task, pair in zip(tasks, pairs, strict=True):
        assert len(task.candidates) == 5
        _check_task(task, pair, rights)
    assert len({task.answer for task in tasks}) > 1  # the true right is not always in one slot
    assert candidate_tasks(pairs, n_candidates=5, seed=3) == tasks
    assert candidate_tasks(pairs, n_candidates=5, seed=4) != tasks


def test_candidate_tasks_use_only_the_given_pairs_and_can_use_all_of_them(tll_root: Path) -> None:
    pairs = load_tll(tll_root).train_pairs()[:6]
    tasks = candidate_tasks(pairs, n_candidates=6, seed=0)
    for task in tasks:
        assert set(task.candidate_ids) == {p.right_id for p in pairs}
    with pytest.raises(DatasetError, match="6 distinct right images cannot make 7-candidate tasks"):
        candidate_tasks(pairs, n_candidates=7)
    with pytest.raises(ValueError, match="at least 2"):
        candidate_tasks(pairs, n_candidates=1)


def test_candidate_tasks_never_offer_the_true_right_as_a_foil_when_rights_repeat() -> None:
    # Regression: two lefts judged to look like the same right must not get that right twice in one task.
    right_ids = ["shared", "shared", "r2", "r3", "r4", "r5"]
    pairs = [TllPair(f"l{i}", right, f"l{i}.jpg", f"{right}.jpg") for i, right in enumerate(right_ids)]
    rights = {p.right_id: p.right for p in pairs}
    for seed in range(20):
        for task, pair in zip(candidate_tasks(pairs, n_candidates=5, seed=seed), pairs, strict=True):
            _check_task(task, pair, rights)


def test_test_tasks_come_from_test_candidates_with_unknown_answers(tll_root: Path) -> None:
    tasks = load_tll(tll_root).test_tasks()
    assert [t.query_id for t in tasks] == ["q00", "q01", "q02"]
    assert tasks[1].candidate_ids == ("c01", "c02", "c03", "c04")
    assert tasks[1].candidates[0] == str(tll_root / "test/right/c01.jpg")
    assert tasks[1].query == str(tll_root / "test/left/q01.jpg")
    assert all(t.answer is None for t in tasks)


def test_test_tasks_report_the_first_missing_images_and_the_count(tll_root: Path) -> None:
    for image in sorted((tll_root / "test" / "right").iterdir()):
        image.unlink()
    (tll_root / "test" / "left" / "q02.jpg").unlink()
    with pytest.raises(DatasetError) as caught:
        load_tll(tll_root).test_tasks()
    message = str(caught.value)
    assert "test_candidates.csv: 7 referenced images are missing: " in message
    assert "test/right/c00.jpg" in message and message.endswith("(first 5 shown)")


def test_test_candidates_problems(tll_root: Path) -> None:
    csv = tll_root / "test_candidates.csv"
    csv.write_text("left,c0,c1\nq00,c00,c01\nq00,c02,c03\n")
    with pytest.raises(DatasetError, match="1 left ids appear more than once: q00"):
        load_tll(tll_root).test_tasks()
    csv.write_text("left,c1,c0\nq00,c00,c01\n")
    with pytest.raises(DatasetError, match="header is 'left,c1,c0'; expected left,c0,c1"):
        load_tll(tll_root).test_tasks()
    csv.write_text("")
    with pytest.raises(DatasetError, match="empty file"):
        load_tll(tll_root).test_tasks()
