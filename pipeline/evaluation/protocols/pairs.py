"""Pairs protocol: face verification on pair lists (LFW View 1 / View 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.datasets.base import Pair
from pipeline.evaluation.report import PairCase
from pipeline.evaluation.setup import EvalSetup, ingest_for_eval, score_restricted
from pipeline.metrics.pairs import accuracy_at, kfold_accuracy, roc_auc, roc_curve, tar_at_far, train_test_accuracy


@dataclass(frozen=True)
class PairRun:
    """Similarity of each pair, scored by a Qdrant query restricted to the right image."""

    pairs: tuple[Pair, ...]
    raw: np.ndarray  # (P,) similarity, NaN where either image has no vector

    @property
    def missing(self) -> int:
        return int(np.isnan(self.raw).sum())

    @property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs], dtype=bool)

    def scores(self, floor: float) -> np.ndarray:
        """Scores with missing pairs set to `floor` (predicted different, as a face pipeline would)."""
        return np.where(np.isnan(self.raw), floor, self.raw)


@dataclass(frozen=True)
class PairEvaluation:
    """Metrics plus what the report shows."""

    metrics: dict[str, float | None]
    threshold: float
    roc: tuple[np.ndarray, np.ndarray]
    notes: tuple[str, ...]


def run_pairs(setup: EvalSetup, pairs: Sequence[Pair]) -> tuple[PairRun, IngestSummary]:
    """Ingest both sides of every pair, then score each pair through Qdrant."""
    summary = ingest_for_eval(setup, [ImageRecord(p) for pair in pairs for p in (pair.left, pair.right)])
    ids = summary.point_ids
    raw = score_restricted(setup, [ids.get(p.left) for p in pairs], [[ids.get(p.right)] for p in pairs])
    return PairRun(tuple(pairs), raw[:, 0] if raw.size else np.full(len(pairs), np.nan)), summary


def missing_floor(*runs: PairRun) -> float:
    finite = np.concatenate([r.raw[~np.isnan(r.raw)] for r in runs])
    return float(finite.min() - 1.0) if finite.size else -1.0


def evaluate_pair_runs(train: PairRun, test: PairRun, folds: int = 10, seed: int = 0) -> PairEvaluation:
    """Threshold from `train` applied to `test`; k-fold accuracy; ROC AUC and TAR@FAR on `test`.

    k-fold uses the pair lists' own folds when they have several (View 2), else seeded folds over train+test.
    """
    floor = missing_floor(train, test)
    test_scores, test_same = test.scores(floor), test.same
    accuracy, threshold = train_test_accuracy(train.scores(floor), train.same, test_scores, test_same)
    all_pairs = (*train.pairs, *test.pairs)
    given = np.array([p.fold for p in all_pairs])
    fold_ids = given if len(set(given.tolist())) > 1 else np.random.default_rng(seed).permutation(len(given)) % folds
    kfold = kfold_accuracy(
        np.concatenate([train.scores(floor), test_scores]), np.concatenate([train.same, test_same]), fold_ids
    )
    notes: list[str] = []
    metrics: dict[str, float | None] = {
        "accuracy": accuracy,
        "threshold": threshold,
        "train_accuracy": accuracy_at(train.scores(floor), train.same, threshold),
        "kfold_accuracy": kfold.mean,
        "kfold_std": kfold.std,
        "roc_auc": roc_auc(test_scores, test_same),
    }
    for far in (1e-3, 1e-2):
        try:
            metrics[f"tar_at_far_{far:g}"] = tar_at_far(test_scores, test_same, far)[0]
        except ValueError as e:
            metrics[f"tar_at_far_{far:g}"] = None
            notes.append(f"TAR@FAR={far:g} not measurable on this pair list: {e}")
    fpr, tpr, _ = roc_curve(test_scores, test_same)
    return PairEvaluation(metrics, threshold, (fpr, tpr), tuple(notes))


def pair_failures(run: PairRun, threshold: float, floor: float, limit: int = 40) -> tuple[PairCase, ...]:
    """Wrong decisions on `run`, the most confidently wrong first."""
    scores = run.scores(floor)
    wrong = np.flatnonzero((scores >= threshold) != run.same)
    order = wrong[np.argsort(-np.abs(scores[wrong] - threshold))][:limit]
    return tuple(
        PairCase(run.pairs[i].left, run.pairs[i].right, float(scores[i]), bool(run.same[i]), threshold) for i in order
    )
