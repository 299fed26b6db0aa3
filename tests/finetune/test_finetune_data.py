"""Data specs, class splits and the validation task each source gets."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from finetune_fakes import stroke_image

from finetune.data import DataSpec, Examples, load_training_data, split_classes
from finetune.errors import DataSpecError
from finetune.validation import (
    CopyValidation,
    NoValidation,
    PairValidation,
    RankingValidation,
    oneshot_validation,
    pairwise_similarity,
    similarity,
)
from pipeline.datasets import load_tll
from pipeline.evaluation.runner import TaskOptions


@pytest.mark.parametrize("text", ["folder", "zip:/tmp", "folder:", ":/tmp", "Folder:/tmp"])
def test_bad_specs_say_what_is_expected(text: str) -> None:
    with pytest.raises(DataSpecError, match="expected KIND:PATH"):
        DataSpec.parse(text)


def test_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataSpecError, match="no such file or folder"):
        DataSpec.parse(f"folder:{tmp_path / 'absent'}")


def test_folder_holds_out_whole_classes(class_folder: Path) -> None:
    data = load_training_data(DataSpec.parse(f"folder:{class_folder}"), seed=0, val_fraction=0.34)
    assert isinstance(data.validation, RankingValidation) and data.validation.name == "oneshot2_top1"
    assert not set(data.train.labels) & {Path(p).parent.name for p in data.validation.paths}
    assert len(set(data.train.labels)) == 4 and len(data.train.paths) == 20


def test_val_fraction_0_trains_on_every_class_and_validates_on_nothing(class_folder: Path) -> None:
    split = load_training_data(DataSpec.parse(f"folder:{class_folder}"), seed=0, val_fraction=0.34)
    data = load_training_data(DataSpec.parse(f"folder:{class_folder}"), seed=0, val_fraction=0.0)
    assert data.validation == NoValidation() and data.validation.paths == ()
    assert set(data.train.paths) == {*split.train.paths, *split.validation.paths}
    assert len(set(data.train.labels)) == 6 and len(data.train.paths) == 30


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_val_fraction_outside_0_to_1_is_refused(class_folder: Path, fraction: float) -> None:
    with pytest.raises(DataSpecError, match=r"validation fraction must be in \[0, 1\)"):
        load_training_data(DataSpec.parse(f"folder:{class_folder}"), val_fraction=fraction)


def test_split_is_per_group_and_seeded() -> None:
    labels = tuple(f"{g}/c{k}" for g in "AB" for k in range(5) for _ in range(2))
    examples = Examples(tuple(f"p{i}" for i in range(len(labels))), labels, tuple(label[0] for label in labels))
    train, val = split_classes(examples, 0.2, seed=3)
    assert sorted({label[0] for label in val.labels}) == ["A", "B"]  # one held-out class from each alphabet
    assert split_classes(examples, 0.2, seed=3) == (train, val)


def test_too_few_classes_is_a_clear_error(tmp_path: Path) -> None:
    for k in range(3):
        for i in range(2):
            (tmp_path / f"c{k}").mkdir(exist_ok=True)
            stroke_image(k, np.random.default_rng(i)).save(tmp_path / f"c{k}" / f"{i}.png")
    with pytest.raises(DataSpecError, match="at least 4 classes"):
        load_training_data(DataSpec.parse(f"folder:{tmp_path}"))


def test_tll_never_trains_on_the_pairs_eval_holds_out(tll_root: Path) -> None:
    data = load_training_data(DataSpec.parse(f"tll:{tll_root}"), seed=5)
    options = TaskOptions()
    _, eval_pairs = load_tll(tll_root).split_train(options.seed, options.val_fraction)
    reserved = {p for pair in eval_pairs for p in (pair.left, pair.right)}
    assert not reserved & set(data.train.paths) and not reserved & set(data.validation.paths)
    assert isinstance(data.validation, RankingValidation) and data.validation.k == 2
    assert len(data.train.paths) == 2 * len(set(data.train.labels))  # each pair is a class of two


def test_tll_val_fraction_0_trains_on_every_pair_but_eval_s(tll_root: Path) -> None:
    split = load_training_data(DataSpec.parse(f"tll:{tll_root}"), seed=5)
    data = load_training_data(DataSpec.parse(f"tll:{tll_root}"), seed=5, val_fraction=0.0)
    options = TaskOptions()
    usable, eval_pairs = load_tll(tll_root).split_train(options.seed, options.val_fraction)
    assert isinstance(data.validation, NoValidation) and len(data.train.paths) == 2 * len(usable)
    assert set(data.train.paths) == {*split.train.paths, *split.validation.paths}
    assert not {p for pair in eval_pairs for p in (pair.left, pair.right)} & set(data.train.paths)


def test_lfw_validates_on_pairs_of_held_out_people(tmp_path: Path) -> None:
    images = tmp_path / "lfw-deepfunneled"
    people = [f"Person_{k}" for k in range(10)]
    rng = np.random.default_rng(0)
    for k, name in enumerate(people):
        for i in range(1, 4):
            (images / name).mkdir(parents=True, exist_ok=True)
            stroke_image(k / 3, rng).save(images / name / f"{name}_{i:04d}.jpg")
    lines = [f"{name}\t1\t2" for name in people] + [f"{a}\t3\t{b}\t3" for a, b in itertools.pairwise(people)]
    (tmp_path / "pairsDevTrain.txt").write_text("\n".join(lines) + "\n")
    data = load_training_data(DataSpec.parse(f"lfw:{tmp_path}"), seed=0)
    assert isinstance(data.validation, PairValidation) and data.validation.same.any() and (~data.validation.same).any()
    held = {Path(p).parent.name for p in data.validation.paths}
    assert held and not held & set(data.train.labels)


def test_oneshot_validation_scores_like_eval() -> None:
    paths = tuple(f"p{i}" for i in range(6))
    labels = ("a", "a", "b", "b", "c", "c")
    task = oneshot_validation(paths, labels, n_way=3, n_tasks=30, seed=0)
    perfect = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
    assert task.evaluate(perfect, "cosine") == 1.0
    assert task.evaluate(np.full((6, 3), np.nan, dtype=np.float32), "cosine") == 0.0  # missing vectors count wrong


def test_similarity_orders_like_qdrant() -> None:
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert similarity(a, a, "cosine")[0] > similarity(a, b, "cosine")[0]
    assert similarity(a, a, "manhattan")[0] == 0.0 and similarity(a, b, "manhattan")[0] == -2.0


def test_euclid_scores_raw_vectors_by_distance_not_by_dot() -> None:
    # The query (1, 0) is nearest to (1, 0) (distance 0) though (10, 0) has the larger dot product.
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    assert similarity(vectors[0], vectors[2], "euclid") == -9.0
    task = RankingValidation("top1", ("q", "a", "b"), np.array([0]), np.array([[1, 2]]), np.array([0]))
    assert task.evaluate(vectors, "euclid") == 1.0 and task.evaluate(vectors, "dot") == 0.0
    pairs = PairValidation("pairs", ("q", "a", "b"), np.array([0, 0]), np.array([1, 2]), np.array([True, False]))
    assert pairs.evaluate(vectors, "euclid") == 1.0
    copies = CopyValidation(("x", "y"), ("blur", "blur"))  # originals (1,0), (10,0); copies (1.5,0), (9,0)
    scored = np.array([[1.0, 0.0], [10.0, 0.0], [1.5, 0.0], [9.0, 0.0]], dtype=np.float32)
    assert copies.evaluate(scored, "euclid") == 1.0 and copies.evaluate(scored, "dot") == 0.5
    np.testing.assert_allclose(pairwise_similarity(scored[2:], scored[:2], "euclid"), [[-0.5, -8.5], [-8.0, -1.0]])
