"""Candidate protocol: each query has its own candidate set (TLL's 20 per left image, one-shot galleries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.datasets.base import CandidateTask, OneShotTask
from pipeline.evaluate import mrr, rank_of_answer, top_k_accuracy
from pipeline.protocols.common import EvalSetup, ingest_for_eval, score_restricted
from pipeline.records import ImageRecord, IngestSummary
from pipeline.report import FailureCase, RankedItem


@dataclass(frozen=True)
class CandidateRun:
    """Scores of every task, with what is needed for metrics and the failure gallery."""

    tasks: tuple[CandidateTask, ...]
    scores: np.ndarray  # (Q, C) similarity; NaN where the query or a candidate has no vector
    ranks: np.ndarray  # (Q,) 1-based rank of the true candidate (ties and NaN count against it)
    ingest: IngestSummary

    @property
    def queries_without_vector(self) -> int:
        return int(np.isnan(self.scores).all(axis=1).sum())

    @property
    def candidates_without_vector(self) -> int:
        return int(np.isnan(self.scores).sum() - self.queries_without_vector * self.scores.shape[1])


def oneshot_as_candidates(tasks: Sequence[OneShotTask]) -> list[CandidateTask]:
    """A one-shot task is a candidate task whose candidates are the gallery."""
    return [CandidateTask(t.query_label, t.query, t.gallery_labels, t.gallery, t.answer) for t in tasks]


def run_candidates(setup: EvalSetup, tasks: Sequence[CandidateTask]) -> CandidateRun:
    """Ingest every query and candidate image, then score each task with a candidate-restricted query.

    Raises:
        ValueError: a task has no known answer (e.g. TLL test rows) — those go to `submit`, not `eval`.
    """
    if any(t.answer is None for t in tasks):
        raise ValueError("candidate evaluation needs tasks with known answers")
    images = [ImageRecord(p) for t in tasks for p in (t.query, *t.candidates)]
    summary = ingest_for_eval(setup, images)
    ids = summary.point_ids
    query_ids = [ids.get(t.query) for t in tasks]
    candidate_ids = [[ids.get(p) for p in t.candidates] for t in tasks]
    scores = score_restricted(setup, query_ids, candidate_ids)
    answers = np.array([t.answer for t in tasks], dtype=np.int64)
    return CandidateRun(tuple(tasks), scores, rank_of_answer(scores, answers), summary)


def candidate_metrics(run: CandidateRun) -> dict[str, float | None]:
    """top-1/2/5 accuracy and MRR over all tasks (tasks without a query vector count as wrong)."""
    n_cand = run.scores.shape[1]
    return {
        "top1": top_k_accuracy(run.ranks, 1),
        "top2": top_k_accuracy(run.ranks, 2),
        "top5": top_k_accuracy(run.ranks, 5) if n_cand >= 5 else None,
        "mrr": mrr(run.ranks),
        "chance_top1": 1.0 / n_cand,
        "chance_top2": min(2, n_cand) / n_cand,
    }


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
