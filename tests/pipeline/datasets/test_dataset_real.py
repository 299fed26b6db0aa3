"""The adapters on the real shared benchmark copies (../shared/datasets, or $LOOKALIKE_*); run with -m slow."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pipeline.datasets import (
    LFW_ENV,
    OMNIGLOT_ENV,
    TLL_ENV,
    candidate_tasks,
    load_lfw,
    load_omniglot,
    load_tll,
)

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


def _root(env_var: str, name: str) -> Path:
    root = Path(os.environ.get(env_var) or SHARED / name)
    if not root.is_dir():
        pytest.skip(f"{root} is absent: set {env_var} to the {name} dataset to run this check")
    return root


def test_tll_counts_and_tasks() -> None:
    dataset = load_tll(_root(TLL_ENV, "tll"))
    pairs = dataset.train_pairs()
    assert len(pairs) == 1600
    tests = dataset.test_tasks()
    assert len(tests) == 2000 and {len(t.candidates) for t in tests} == {20}
    train, val = dataset.split_train(seed=0)
    assert (len(train), len(val)) == (1280, 320)
    tasks = candidate_tasks(val, n_candidates=20, seed=0)
    assert all(
        t.answer is not None and t.candidate_ids[t.answer] == p.right_id for t, p in zip(tasks, val, strict=True)
    )


def test_lfw_view1_counts() -> None:
    dataset = load_lfw(_root(LFW_ENV, "lfw"))
    train, test = dataset.pairs("DevTrain"), dataset.pairs("DevTest")
    assert (len(train), len(test)) == (2200, 1000)
    assert Counter(p.same for p in train) == {True: 1100, False: 1100}
    assert Counter(p.same for p in test) == {True: 500, False: 500}
    assert len(dataset.people_images()) == 4992


def test_omniglot_small_sets() -> None:
    root = _root(OMNIGLOT_ENV, "omniglot")
    small1 = load_omniglot(root, ["images_background_small1"])
    assert len(small1.alphabets()) == 5
    assert len(small1.characters()) == 136 and len(small1.images()) == 2720
    assert all(c.drawers == tuple(range(1, 21)) for c in small1.characters())
    assert len(load_omniglot(root, ["images_background_small2"]).images()) == 3120
    both = load_omniglot(root)
    assert both.shadowed == ("images_background_small2/Greek", "images_background_small2/Latin")
    assert len(both.characters()) == 136 + 156 - 24 - 26
    tasks = small1.oneshot_tasks(n_way=20, n_tasks=400, seed=0)
    assert len(tasks) == 400 and Counter(t.alphabet for t in tasks) == {a: 80 for a in small1.alphabets()}
