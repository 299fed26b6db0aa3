"""Totally-Looks-Like adapter: layout checks, pairs, seeded splits and 1-of-N tasks, test tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import DatasetError
from pipeline.datasets import CandidateTask, TllPair, candidate_tasks, load_tll

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
    expected = f"{tll_root / 'train.csv'}: line 5: no image for right id 'r03' at {tll_root / 'train/right/r03.jpg'}"
    with pytest.raises(DatasetError) as caught:
        load_tll(tll_root).train_pairs()
    assert str(caught.value) == expected


TRAIN_CSV_PROBLEMS = [
    ("left,right\nl00,r00\nl00,r01\n", r"train\.csv: line 3: left id 'l00' repeats line 2$"),
    ("left,other\nl00,r00\n", r"line 1: header is 'left,other'; expected left,right$"),
    ("left,right,note\nl00,r00,x\n", r"header is 'left,right,note'; expected left,right$"),
    ("left,right\nl00,\n", r"line 2: empty right cell$"),
    ("left,right\nl00,r00,r01\n", r"line 2: 3 cells; the header has 2$"),
    ("left,right\n", r"header only, no data rows$"),
]


@pytest.mark.parametrize(("text", "message"), TRAIN_CSV_PROBLEMS)
def test_train_csv_problems(tll_root: Path, text: str, message: str) -> None:
    (tll_root / "train.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
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
    with pytest.raises(DatasetError, match=r"train\.csv: holding out 0\.01 of its 10 pairs leaves an empty part"):
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
    assert str(caught.value) == (
        f"{tll_root / 'test_candidates.csv'}: line 2: no image for c0 id 'c00' at {tll_root / 'test/right/c00.jpg'}; "
        "7 referenced images are missing in all"
    )


TEST_CANDIDATES_PROBLEMS = [
    ("left,c0,c1\nq00,c00,c01\nq00,c02,c03\n", r"test_candidates\.csv: line 3: left id 'q00' repeats line 2$"),
    ("left,c0,c1,c2\nq00,c00,c01,c00\n", r"line 2: candidate 'c00' appears twice \(c0 and c2\)$"),
    ("left\nq00\n", r"header is 'left'; expected left,c0$"),
    ("left,c1,c0\nq00,c00,c01\n", "header is 'left,c1,c0'; expected left,c0,c1"),
    ("", "empty file"),
]


@pytest.mark.parametrize(("text", "message"), TEST_CANDIDATES_PROBLEMS)
def test_test_candidates_problems(tll_root: Path, text: str, message: str) -> None:
    (tll_root / "test_candidates.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_tll(tll_root).test_tasks()


@pytest.mark.parametrize(
    ("image_id", "problem"),
    [
        ("../../outside/x", "it has a path separator"),
        ("/etc/passwd", "it has a path separator"),
        ("..\\x", "it has a path separator"),
        ("..", "it names a folder"),
        (".", "it names a folder"),
        ("a\x00b", "it has a control character"),
        ("a\u202eb", "it has a control character"),  # a bidi override would make messages lie
    ],
)
def test_ids_must_be_plain_file_names(tll_root: Path, image_id: str, problem: str) -> None:
    # Regression (issue 16): a left id `../../…/outside/x` read an image outside the dataset.
    (tll_root / "train.csv").write_text(f"left,right\nl00,r00\n{image_id},r01\n")
    with pytest.raises(DatasetError) as caught:
        load_tll(tll_root).train_pairs()
    assert str(caught.value) == (
        f"{tll_root / 'train.csv'}: line 3: left id {image_id!r} is not a plain file name ({problem})"
    )


def test_bom_crlf_quotes_and_blank_lines_are_accepted(tll_root: Path) -> None:
    text = 'left,right\r\n\r\n"l00",r00\r\nnan , tru\r\n'
    (tll_root / "train.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    pairs = load_tll(tll_root).train_pairs()
    assert [(p.left_id, p.right_id) for p in pairs] == [("l00", "r00"), ("nan", "tru")]


def test_unreadable_csv_is_one_line_naming_the_line(tll_root: Path) -> None:
    csv = tll_root / "test_candidates.csv"
    csv.write_bytes(b"left,c0,c1\nq00,c00,c01\nq\xff1,c02,c03\n")
    with pytest.raises(DatasetError, match=r"test_candidates\.csv: line 3: byte 0xff is not UTF-8; save it as UTF-8$"):
        load_tll(tll_root).test_tasks()
    csv.write_text('left,c0,c1\nq00,c00,c01\n"q01"x,c02,c03\n')
    with pytest.raises(DatasetError, match=r"line 3: not valid CSV \(',' expected after '\"'\)$"):
        load_tll(tll_root).test_tasks()
    csv.unlink()
    csv.mkdir()
    with pytest.raises(DatasetError, match=r"test_candidates\.csv: not a regular file$"):
        load_tll(tll_root).test_tasks()


def test_sample_submission_is_read_and_checked(tll_root: Path) -> None:
    sample = tll_root / "sample-submission.csv"
    assert load_tll(tll_root).read_sample() is None
    sample.write_text("left,c0,c1\nq00,0.1,0.9\nq01,0.5,0.5\n")
    read = load_tll(tll_root).read_sample()
    assert read is not None and read.columns == ("left", "c0", "c1") and read.lefts == ("q00", "q01")
    sample.write_text("left,c0,c1\n../q00,0.1,0.9\n")
    with pytest.raises(DatasetError, match=r"sample-submission\.csv: line 2: left id '\.\./q00' is not a plain"):
        load_tll(tll_root).read_sample()
    sample.write_text("left,c0,c1\nq00,0.1,0.9\nq00,0.5,0.5\n")
    with pytest.raises(DatasetError, match=r"line 3: left id 'q00' repeats line 2$"):
        load_tll(tll_root).read_sample()
