"""Validation tasks scored on embeddings after each epoch, with the metric functions `lookalike eval` reports.

- `RankingValidation`: pick the true candidate among C (N-way one-shot galleries; TLL's 1-of-20): top-k accuracy
  via `pipeline.metrics.ranking.rank_of_answer` / `top_k_accuracy` (ties and missing vectors count against).
- `PairValidation`: same/different pairs: accuracy at the best threshold (`pipeline.metrics.pairs.best_threshold`);
  pairs with a missing vector score lowest, as `eval pairs` does.
- `CopyValidation`: one transformed copy of each held-out image must find its original among all held-out
  originals (recall@1, as `lookalike eval copies` scores copies against references).
- `NoValidation`: nothing held out (`--val-fraction 0`, a refit on every class for a fixed number of epochs).

A validation with no paths is no validation: training runs every epoch and keeps the last weights.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.core.records import Distance
from pipeline.core.transforms import TRANSFORM_NAMES
from pipeline.datasets.tll import TllPair, candidate_tasks
from pipeline.metrics.pairs import best_threshold
from pipeline.metrics.ranking import rank_of_answer, top_k_accuracy
from pipeline.store import VectorSpec
from pipeline.store.scoring import score_matrix


class Validation(Protocol):
    """Scores the model's (M, D) output vectors for `paths` (NaN rows: no vector) as one number, higher = better."""

    @property
    def name(self) -> str: ...

    @property
    def paths(self) -> tuple[str, ...]: ...

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float: ...


@dataclass(frozen=True)
class NoValidation:
    """Nothing held out: every class is trained on, there is no metric (NaN) and no early stopping."""

    name: str = "none"
    paths: tuple[str, ...] = ()

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float:
        return math.nan


def similarity(left: np.ndarray, right: np.ndarray, distance: Distance) -> np.ndarray:
    """Row-wise similarity of (..., D) arrays, as Qdrant ranks them: dot of unit vectors, −L1 (Manhattan) or −L2
    (Euclid, raw vectors)."""
    if distance == "manhattan":
        return -np.abs(left - right).sum(axis=-1)
    if distance == "euclid":
        return -np.sqrt(((left - right) ** 2).sum(axis=-1))
    return (left * right).sum(axis=-1)


@dataclass(frozen=True)
class RankingValidation:
    """Each query picks one of its candidates; the metric is top-`k` accuracy.

    Attributes:
        queries: (Q,) index into `paths`.
        candidates: (Q, C) indices into `paths`.
        answers: (Q,) column of the true candidate.
    """

    name: str
    paths: tuple[str, ...]
    queries: np.ndarray
    candidates: np.ndarray
    answers: np.ndarray
    k: int = 1

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float:
        scores = similarity(vectors[self.queries][:, None, :], vectors[self.candidates], distance)  # (Q, C)
        return top_k_accuracy(rank_of_answer(scores, self.answers), self.k)


@dataclass(frozen=True)
class CopyValidation:
    """Copy detection on held-out images: the gallery is every original, each query one copy of one of them.

    `paths` are keys, not files (the copies are made in memory by `finetune.copies`): the originals in order, then
    their copies in the same order, so the vectors passed to `evaluate` are (2V, D).

    Attributes:
        originals: the held-out image files.
        transforms: the `pipeline.bench.copies` transform that makes each original's query copy.
        seed: seeds the copies' random parameters.
    """

    originals: tuple[str, ...]
    transforms: tuple[str, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.originals) != len(self.transforms):
            raise ValueError(f"CopyValidation: {len(self.originals)} originals, {len(self.transforms)} transforms")

    @property
    def name(self) -> str:
        return "copy_recall1"

    @property
    def paths(self) -> tuple[str, ...]:
        copies = (f"{p}#copy-{t}" for p, t in zip(self.originals, self.transforms, strict=True))
        return (*(f"{p}#original" for p in self.originals), *copies)

    def subset(self, keep: Sequence[int]) -> CopyValidation:
        """The task over some of the originals (e.g. the decodable ones), each keeping its transform."""
        return CopyValidation(
            tuple(self.originals[i] for i in keep), tuple(self.transforms[i] for i in keep), self.seed
        )

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float:
        n = len(self.originals)
        scores = pairwise_similarity(vectors[n:], vectors[:n], distance)  # (V copies, V originals)
        return top_k_accuracy(rank_of_answer(scores, np.arange(n)), 1)


def copy_validation(originals: Sequence[str], seed: int = 0) -> CopyValidation:
    """Copy detection over these originals, their query copies cycling through the ten `lookalike bench` edits."""
    names = tuple(TRANSFORM_NAMES[i % len(TRANSFORM_NAMES)] for i in range(len(originals)))
    return CopyValidation(tuple(originals), names, seed)


def pairwise_similarity(queries: np.ndarray, gallery: np.ndarray, distance: Distance) -> np.ndarray:
    """(Q, G) similarity of every query row to every gallery row, as `similarity` scores one pair."""
    if distance == "manhattan":  # one query at a time: (Q, G, D) at once would be Q × G × D floats
        rows = [-np.abs(gallery - q).sum(axis=1) for q in queries]
        return np.stack(rows) if rows else np.zeros((0, len(gallery)), dtype=np.float32)
    if distance == "euclid":  # the store's own scoring, in float64 (a vector's distance to itself stays 0)
        return score_matrix(queries, gallery, VectorSpec("v", queries.shape[1], "euclid"))
    return queries @ gallery.T


@dataclass(frozen=True)
class PairValidation:
    """Same/different pairs (`left`, `right` index `paths`); the metric is accuracy at the best threshold."""

    name: str
    paths: tuple[str, ...]
    left: np.ndarray
    right: np.ndarray
    same: np.ndarray

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float:
        scores = similarity(vectors[self.left], vectors[self.right], distance)  # (P,)
        finite = scores[np.isfinite(scores)]
        floor = float(finite.min()) - 1.0 if finite.size else -1.0
        return best_threshold(np.where(np.isfinite(scores), scores, floor), self.same)[1]


def _by_label(labels: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {label: members for label, members in sorted(groups.items()) if len(members) >= 2}


def oneshot_validation(
    paths: Sequence[str], labels: Sequence[str], n_way: int = 20, n_tasks: int = 400, seed: int = 0
) -> RankingValidation:
    """N-way one-shot tasks over held-out classes: a gallery of one image per class, a query of another image.

    N is lowered to the number of classes with two images or more when there are fewer than `n_way`.

    Raises:
        ValueError: fewer than two classes have two images.
    """
    classes = _by_label(labels)
    n_way = min(n_way, len(classes))
    if n_way < 2:
        raise ValueError(f"one-shot validation needs 2 classes with 2+ images each; got {len(classes)}")
    rng = random.Random(seed)
    names = list(classes)
    queries, galleries, answers = [], [], []
    for _ in range(n_tasks):
        chosen = rng.sample(names, n_way)
        answer = rng.randrange(n_way)
        gallery = [rng.choice(classes[name]) for name in chosen]
        queries.append(rng.choice([i for i in classes[chosen[answer]] if i != gallery[answer]]))
        galleries.append(gallery)
        answers.append(answer)
    return RankingValidation(
        f"oneshot{n_way}_top1", tuple(paths), np.array(queries), np.array(galleries), np.array(answers), k=1
    )


def candidate_validation(pairs: Sequence[TllPair], n_candidates: int = 20, seed: int = 0) -> RankingValidation:
    """TLL's task on held-out pairs (true right image + seeded foils, `candidate_tasks`); the metric is top-2."""
    tasks = candidate_tasks(pairs, min(n_candidates, len({p.right_id for p in pairs})), seed)
    paths = sorted({p for t in tasks for p in (t.query, *t.candidates)})
    index = {p: i for i, p in enumerate(paths)}
    return RankingValidation(
        "top2",
        tuple(paths),
        np.array([index[t.query] for t in tasks]),
        np.array([[index[c] for c in t.candidates] for t in tasks]),
        np.array([t.answer for t in tasks]),
        k=2,
    )


def pair_validation(
    paths: Sequence[str], labels: Sequence[str], max_pairs: int = 2000, seed: int = 0
) -> PairValidation:
    """Balanced verification pairs over held-out classes: same-class pairs and as many random different-class pairs.

    Raises:
        ValueError: no class has two images, or there is only one class.
    """
    classes = _by_label(labels)
    rng = random.Random(seed)
    same = [(a, b) for members in classes.values() for i, a in enumerate(members) for b in members[i + 1 :]]
    same = rng.sample(same, min(len(same), max_pairs // 2))
    if not same or len(set(labels)) < 2:
        raise ValueError("pair validation needs a class with 2+ images and at least 2 classes")
    different: set[tuple[int, int]] = set()
    for _ in range(50 * len(same)):
        if len(different) == len(same):
            break
        a, b = rng.randrange(len(paths)), rng.randrange(len(paths))
        if labels[a] != labels[b]:
            different.add((min(a, b), max(a, b)))
    pairs = same + sorted(different)
    return PairValidation(
        "pair_accuracy",
        tuple(paths),
        np.array([a for a, _ in pairs]),
        np.array([b for _, b in pairs]),
        np.array([True] * len(same) + [False] * len(different)),
    )
