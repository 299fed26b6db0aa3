"""Candidate protocol: each query has its own candidate set (TLL's 20 per left image, one-shot galleries)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.datasets.base import CandidateTask, OneShotTask
from pipeline.evaluation.report import FailureCase, RankedItem
from pipeline.evaluation.setup import EvalSetup, fetch_vectors, ingest_for_eval, score_restricted
from pipeline.metrics.ranking import mrr, rank_of_answer, top_k_accuracy
from pipeline.search.fusion import Calibration, fit_calibration, label_free_calibration
from pipeline.search.hubness import correct_hubness, mean_candidate_similarity


@dataclass(frozen=True)
class CandidateRun:
    """Scores of every task, with what is needed for metrics and the failure gallery."""

    tasks: tuple[CandidateTask, ...]
    scores: np.ndarray  # (Q, C) similarity (fused z-score with several encoders); NaN where nothing scored
    ranks: np.ndarray  # (Q,) 1-based rank of the true candidate (ties and NaN count against it)
    ingest: IngestSummary
    per_encoder: np.ndarray | None = None  # (E, Q, C) each encoder's own similarity, when several were fused
    encoders: tuple[str, ...] = ()
    calibration: Calibration | None = None

    @property
    def queries_without_vector(self) -> int:
        return int(np.isnan(self.scores).all(axis=1).sum())

    @property
    def candidates_without_vector(self) -> int:
        return int(np.isnan(self.scores).sum() - self.queries_without_vector * self.scores.shape[1])


def oneshot_as_candidates(tasks: Sequence[OneShotTask]) -> list[CandidateTask]:
    """A one-shot task is a candidate task whose candidates are the gallery."""
    return [CandidateTask(t.query_label, t.query, t.gallery_labels, t.gallery, t.answer) for t in tasks]


def score_tasks(setup: EvalSetup, tasks: Sequence[CandidateTask]) -> tuple[np.ndarray, IngestSummary]:
    """Ingest every query and candidate image with each encoder of the setup, then score each task with
    candidate-restricted queries, encoder by encoder (hubness-corrected when `setup.hubness` > 0).

    Returns:
        (E, Q, C) similarities (NaN where the query or a candidate has no vector for that encoder), and the
        ingest counts summed over the encoders.
    """
    images = [ImageRecord(p) for t in tasks for p in (t.query, *t.candidates)]
    summary = ingest_for_eval(setup, images)
    ids = summary.point_ids
    query_ids = [ids.get(t.query) for t in tasks]
    candidate_ids = [[ids.get(p) for p in t.candidates] for t in tasks]
    layers = [_encoder_scores(setup.for_encoder(e), query_ids, candidate_ids) for e in setup.all_encoders]
    return np.stack(layers), summary


def _encoder_scores(
    setup: EvalSetup, query_ids: Sequence[str | None], candidate_ids: Sequence[Sequence[str | None]]
) -> np.ndarray:
    """(Q, C) one encoder's similarities through the store, then its hubness correction when asked for."""
    scores = score_restricted(setup, query_ids, candidate_ids)
    if setup.hubness == 0:
        return scores
    vectors = fetch_vectors(setup, [c for ids in candidate_ids for c in ids if c])
    mean_similarity = mean_candidate_similarity(vectors, candidate_ids, setup.spec.distance)
    return correct_hubness(scores, mean_similarity, setup.hubness)


def _answers(tasks: Sequence[CandidateTask]) -> np.ndarray:
    if any(t.answer is None for t in tasks):
        raise ValueError("candidate evaluation needs tasks with known answers")
    return np.array([t.answer for t in tasks], dtype=np.int64)


def run_candidates(
    setup: EvalSetup, tasks: Sequence[CandidateTask], calibration: Calibration | None = None, label_free: bool = False
) -> CandidateRun:
    """Ingest every query and candidate image, then score each task with a candidate-restricted query.

    With several encoders, their scores are fused with `calibration` (fitted on other tasks, see
    `fit_candidate_calibration`), or, when `label_free` and no calibration is given, with a normalisation fitted
    on these tasks' scores alone (`label_free_calibration`); with one encoder its similarity is used as it is.

    Raises:
        ValueError: a task has no known answer (e.g. TLL test rows) — those go to `submit`, not `eval` —
            or several encoders without a calibration for them.
    """
    answers = _answers(tasks)
    fusing = len(setup.all_encoders) > 1
    if fusing and not label_free and (calibration is None or calibration.encoders != setup.encoder_names):
        raise ValueError(f"fusing {', '.join(setup.encoder_names)} needs a calibration fitted for them")
    per_encoder, summary = score_tasks(setup, tasks)
    if fusing and calibration is None:
        calibration = label_free_calibration(per_encoder, setup.encoder_names, setup.fusion_weights)
    if calibration is None:
        return CandidateRun(tuple(tasks), per_encoder[0], rank_of_answer(per_encoder[0], answers), summary)
    fused = calibration.fuse(per_encoder)
    ranks = rank_of_answer(fused, answers)
    return CandidateRun(tuple(tasks), fused, ranks, summary, per_encoder, setup.encoder_names, calibration)


def fit_candidate_calibration(
    setup: EvalSetup, tasks: Sequence[CandidateTask], seed: int, split: Mapping[str, Any]
) -> tuple[Calibration, IngestSummary]:
    """Fit fusion normalisation and softmax temperature on training tasks (answers known) through the store.

    Args:
        setup: the encoders to fuse, with `setup.fusion_weights` (or weights fitted here, if `setup.fit_weights`).
        tasks: the fitting tasks (never the ones the calibration is then judged on).
        seed, split: recorded in the calibration to say which tasks it saw.
    """
    answers = _answers(tasks)
    per_encoder, summary = score_tasks(setup, tasks)
    split = {**split, "tasks": len(tasks), "candidates": per_encoder.shape[2], "hubness": setup.hubness}
    weights = None if setup.fit_weights else setup.fusion_weights
    calibration = fit_calibration(per_encoder, answers, setup.encoder_names, weights, seed=seed, split=split)
    return calibration, summary


def candidate_metrics(run: CandidateRun) -> dict[str, float | None]:
    """top-1/2/5 accuracy and MRR over all tasks (tasks without a query vector count as wrong); with
    several encoders also `top1[<encoder>]`/`top2[<encoder>]` for each encoder alone."""
    n_cand = run.scores.shape[1]
    metrics: dict[str, float | None] = {
        "top1": top_k_accuracy(run.ranks, 1),
        "top2": top_k_accuracy(run.ranks, 2),
        "top5": top_k_accuracy(run.ranks, 5) if n_cand >= 5 else None,
        "mrr": mrr(run.ranks),
        "chance_top1": 1.0 / n_cand,
        "chance_top2": min(2, n_cand) / n_cand,
    }
    if run.per_encoder is not None:
        answers = _answers(run.tasks)
        for name, layer in zip(run.encoders, run.per_encoder, strict=True):
            ranks = rank_of_answer(layer, answers)
            metrics[f"top1[{name}]"] = top_k_accuracy(ranks, 1)
            metrics[f"top2[{name}]"] = top_k_accuracy(ranks, 2)
    return metrics


def worst_failures(run: CandidateRun, limit: int = 40, k: int = 5) -> tuple[FailureCase, ...]:
    """The tasks whose true candidate ranked worst (then lowest true score), for the report gallery."""
    true_scores = np.array([run.scores[i, t.answer or 0] for i, t in enumerate(run.tasks)])
    order = np.lexsort((np.nan_to_num(true_scores, nan=-np.inf), -run.ranks))
    cases = []
    for i in order[:limit]:
        if run.ranks[i] == 1:
            break
        cases.append(_failure(run, int(i), k))
    return tuple(cases)


def _failure(run: CandidateRun, i: int, k: int) -> FailureCase:
    task = run.tasks[i]
    row = np.nan_to_num(run.scores[i], nan=-np.inf)
    top = np.argsort(-row, kind="stable")[:k]
    ranked = tuple(RankedItem(task.candidates[j], float(row[j]), j == task.answer) for j in top)
    answer = task.answer or 0
    truth_score = run.scores[i, answer]
    note = f"true match at rank {run.ranks[i]} (score {truth_score:.3f})"
    if np.isnan(run.scores[i]).all():
        note = "the query has no vector (no face found or unreadable)"
    return FailureCase(task.query, (task.candidates[answer],), ranked, note)
