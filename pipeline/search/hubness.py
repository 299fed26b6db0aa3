"""Hubness correction for candidate tasks: a candidate that resembles every other candidate stops winning.

In a task whose candidates are given (a one-shot gallery, TLL's 20 right images), some candidates are "hubs":
close to many images, so they are the nearest neighbour of queries that belong elsewhere (Radovanović et al.
2010). In the spirit of CSLS (Conneau et al. 2018), each candidate's score is lowered by β × its mean similarity to
the other candidates of the same task:

    s'(q, c) = s(q, c) − β · mean_{c' ≠ c} s(c, c')

Only the candidates are used — never other queries, never labels — so each query is still ranked on its own (not
transductive). Similarities are the ones Qdrant reports (`pipeline.store.scoring.pair_similarity`: MaxSim for
multivectors, where s(c, c') puts c on the query side, as s(q, c) does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.core.records import Distance
from pipeline.store.scoring import pair_similarity

PAIR_CHUNK = 4096  # candidate pairs scored at a time (bounds memory for multivectors)


def mean_candidate_similarity(
    vectors: Mapping[str, np.ndarray], candidate_ids: Sequence[Sequence[str | None]], distance: Distance
) -> np.ndarray:
    """(Q, C) mean similarity of each task's candidate to the task's other candidates that have a vector.

    NaN where the candidate has no vector or no other candidate has one. Each ordered pair (c, c') is scored once
    however many tasks share it.
    """
    n_cand = max((len(c) for c in candidate_ids), default=0)
    present = [[c for c in ids if c is not None and c in vectors] for ids in candidate_ids]
    pairs = sorted({(a, b) for ids in present for a in ids for b in ids if a != b})
    score = _pair_scores(vectors, pairs, distance)
    out = np.full((len(candidate_ids), n_cand), np.nan, dtype=np.float64)
    for i, ids in enumerate(candidate_ids):
        for j, a in enumerate(ids):
            others = [score[(a, b)] for b in present[i] if b != a] if a in present[i] else []
            if others:
                out[i, j] = float(np.mean(others))
    return out


def _pair_scores(
    vectors: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], distance: Distance
) -> dict[tuple[str, str], float]:
    scores: dict[tuple[str, str], float] = {}
    for start in range(0, len(pairs), PAIR_CHUNK):
        chunk = pairs[start : start + PAIR_CHUNK]
        left = np.stack([vectors[a] for a, _ in chunk])
        right = np.stack([vectors[b] for _, b in chunk])
        scores.update(zip(chunk, pair_similarity(left, right, distance).tolist(), strict=True))
    return scores


def correct_hubness(scores: np.ndarray, mean_similarity: np.ndarray, beta: float) -> np.ndarray:
    """(Q, C) scores minus `beta` × each candidate's mean similarity to the other candidates (a candidate without
    one, NaN, keeps its score; NaN scores stay NaN).

    Raises:
        ValueError: beta is negative or not finite, or the shapes differ.
    """
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"hubness correction must be a number >= 0, got {beta}")
    if scores.shape != mean_similarity.shape:
        raise ValueError(f"scores {scores.shape} and candidate similarities {mean_similarity.shape} differ in shape")
    return scores - beta * np.nan_to_num(mean_similarity, nan=0.0)
