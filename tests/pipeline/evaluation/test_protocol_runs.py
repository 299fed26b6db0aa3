"""Protocols through the production path (injected tiny encoder → in-memory Qdrant → restricted queries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import GreyEncoder, TinyEncoder, write_noise_images
from PIL import Image

from pipeline.datasets.base import CandidateTask, OneShotTask, Pair
from pipeline.encoders.base import Encoder
from pipeline.evaluation.protocols.candidates import (
    candidate_metrics,
    fit_candidate_calibration,
    oneshot_as_candidates,
    run_candidates,
    score_tasks,
    worst_failures,
)
from pipeline.evaluation.protocols.pairs import evaluate_pair_runs, run_pairs
from pipeline.evaluation.setup import EvalSetup, Scoring, fetch_vectors
from pipeline.index.collection import IndexedCollection
from pipeline.store import VectorStore


def _setup(store: VectorStore, encoder: TinyEncoder | None = None, tmp: Path | None = None) -> EvalSetup:
    index = IndexedCollection(
        store,
        "ev",
        (encoder or TinyEncoder(),),
        torch.device("cpu"),
        batch_size=8,
        workers=0,
        progress=False,
        report_dir=tmp or Path("/tmp"),
    )
    return EvalSetup(index)


def _noisy(path: Path, out: Path, seed: int, amount: int = 25) -> str:
    pixels = np.asarray(Image.open(path), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-amount, amount + 1, pixels.shape)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)).save(out)
    return str(out)


@pytest.fixture
def tasks(tmp_path: Path) -> list[CandidateTask]:
    """6 tasks over 5 candidates each; the query is a noisy copy of the candidate at `answer`."""
    gallery = [str(p) for p in write_noise_images(tmp_path / "gallery", 12, seed=5)]
    out = []
    for t in range(6):
        candidates = tuple(gallery[(t + j) % 12] for j in range(5))
        answer = (t * 2) % 5
        query = _noisy(Path(candidates[answer]), tmp_path / "queries" / f"q{t}.png", t)
        out.append(CandidateTask(f"q{t}", query, tuple(Path(c).stem for c in candidates), candidates, answer))
    return out


def test_candidates_find_the_answer_and_second_run_embeds_nothing(
    tasks: list[CandidateTask], vector_store: VectorStore, tmp_path: Path
) -> None:
    run = run_candidates(_setup(vector_store, tmp=tmp_path), tasks)
    assert run.scores.shape == (6, 5) and not np.isnan(run.scores).any()
    assert run.ranks.tolist() == [1] * 6
    metrics = candidate_metrics(run)
    assert metrics["top1"] == 1.0 and metrics["mrr"] == 1.0 and metrics["chance_top1"] == pytest.approx(0.2)
    assert worst_failures(run) == ()
    again = TinyEncoder()
    second = run_candidates(_setup(vector_store, again, tmp_path), tasks)
    assert again.embedded == 0 and second.ingest.ingested == 0
    np.testing.assert_allclose(second.scores, run.scores)


def test_query_is_restricted_to_its_own_candidates(
    tasks: list[CandidateTask], vector_store: VectorStore, tmp_path: Path
) -> None:
    """Exact copies of every query sit in the collection but in no candidate set: they must not be returned."""
    setup = _setup(vector_store, tmp=tmp_path)
    decoys = [_noisy(Path(t.query), tmp_path / "decoys" / f"d{i}.png", 100 + i, amount=1) for i, t in enumerate(tasks)]
    from pipeline.core.records import ImageRecord
    from pipeline.evaluation.setup import ingest_for_eval

    ingest_for_eval(setup, [ImageRecord(d) for d in decoys])
    run = run_candidates(setup, tasks)
    assert not np.isnan(run.scores).any() and run.ranks.tolist() == [1] * 6


def test_wrong_answers_are_ranked_and_reported(tasks: list[CandidateTask], vector_store: VectorStore) -> None:
    shifted = [CandidateTask(t.query_id, t.query, t.candidate_ids, t.candidates, (t.answer + 1) % 5) for t in tasks]  # type: ignore[operator]
    run = run_candidates(_setup(vector_store), shifted)
    assert (run.ranks > 1).all()
    failures = worst_failures(run)
    assert len(failures) == 6 and all("rank" in f.note for f in failures)
    assert all(not f.ranked[0].correct for f in failures)


def test_queries_without_vectors_count_as_wrong(tasks: list[CandidateTask], vector_store: VectorStore) -> None:
    run = run_candidates(_setup(vector_store, TinyEncoder(dark_below=2.0)), tasks)
    assert run.queries_without_vector == 6 and (run.ranks == 5).all()
    assert candidate_metrics(run)["top1"] == 0.0


def test_oneshot_tasks_become_candidate_tasks() -> None:
    task = OneShotTask("Greek", "q.png", "Greek/c2", ("a.png", "b.png"), ("Greek/c1", "Greek/c2"), 1)
    [converted] = oneshot_as_candidates([task])
    assert converted.query == "q.png" and converted.candidates == ("a.png", "b.png") and converted.answer == 1


def test_pairs_verification_separates_copies_from_strangers(tmp_path: Path, vector_store: VectorStore) -> None:
    originals = write_noise_images(tmp_path / "orig", 16, seed=9)
    pairs = [Pair(str(p), _noisy(p, tmp_path / "copy" / p.name, i), True, 0) for i, p in enumerate(originals[:8])]
    pairs += [Pair(str(originals[i]), str(originals[i + 8]), False, 0) for i in range(8)]
    setup = _setup(vector_store, tmp=tmp_path)
    train, _ = run_pairs(setup, pairs[::2])
    test, _ = run_pairs(setup, pairs[1::2])
    assert train.missing == 0 and test.missing == 0
    evaluation = evaluate_pair_runs(train, test, folds=2)
    assert evaluation.metrics["accuracy"] == 1.0 and evaluation.metrics["roc_auc"] == 1.0
    assert evaluation.metrics["tar_at_far_0.001"] is None and evaluation.notes  # 4 negatives cannot measure 1e-3


def _fused_setup(store: VectorStore, tmp: Path, second: Encoder, weights: tuple[float, ...] = ()) -> EvalSetup:
    index = IndexedCollection(
        store, "fused", (TinyEncoder(), second), torch.device("cpu"), batch_size=8, workers=0, progress=False,
        report_dir=tmp,
    )  # fmt: skip
    return EvalSetup(index, Scoring(weights=weights))


def test_two_encoders_are_fused_with_a_calibration_fitted_on_other_tasks(
    tasks: list[CandidateTask], vector_store: VectorStore, tmp_path: Path
) -> None:
    setup = _fused_setup(vector_store, tmp_path, GreyEncoder(), (0.3, 0.7))
    calibration, _ = fit_candidate_calibration(setup, tasks[:3], seed=0, split={"source": "test"})
    assert calibration.encoders == ("tiny:thumb8", "grey:4") and calibration.weights == (0.3, 0.7)
    assert calibration.split["tasks"] == 3 and calibration.temperature > 0
    run = run_candidates(setup, tasks[3:], calibration)
    assert run.per_encoder is not None and run.per_encoder.shape == (2, 3, 5)
    assert run.ranks.tolist() == [1, 1, 1]
    metrics = candidate_metrics(run)
    assert metrics["top1"] == metrics["top1[tiny:thumb8]"] == 1.0 and "top2[grey:4]" in metrics
    with pytest.raises(ValueError, match="needs a calibration"):
        run_candidates(setup, tasks)


def test_fused_run_with_an_encoder_that_finds_no_face_follows_the_other(
    tasks: list[CandidateTask], vector_store: VectorStore, tmp_path: Path
) -> None:
    setup = _fused_setup(vector_store, tmp_path, GreyEncoder(bright_above=-1.0))  # no vector for any image
    per_encoder, summary = score_tasks(setup, tasks)
    assert np.isnan(per_encoder[1]).all() and summary.no_face == summary.seen // 2
    calibration, _ = fit_candidate_calibration(setup, tasks, seed=0, split={})
    run = run_candidates(setup, tasks, calibration)
    alone = run_candidates(setup.for_encoder(setup.encoder), tasks)
    np.testing.assert_array_equal(run.ranks, alone.ranks)
    assert not np.isnan(run.scores).any()


def test_hubness_correction_subtracts_each_candidates_mean_similarity_per_encoder(
    tasks: list[CandidateTask], vector_store: VectorStore, tmp_path: Path
) -> None:
    setup = _fused_setup(vector_store, tmp_path, GreyEncoder())
    plain, summary = score_tasks(setup, tasks)
    corrected, _ = score_tasks(setup.with_hubness(0.5), tasks)
    ids = summary.point_ids
    for e, encoder in enumerate(setup.all_encoders):  # by hand: cosines between the stored candidate vectors
        vectors = fetch_vectors(setup.for_encoder(encoder), [ids[p] for t in tasks for p in t.candidates])
        for i, t in enumerate(tasks):
            unit = np.stack([vectors[ids[p]] for p in t.candidates]).astype(np.float64)
            unit /= np.linalg.norm(unit, axis=1, keepdims=True)
            cos = unit @ unit.T
            mean_others = (cos.sum(axis=1) - np.diag(cos)) / (len(t.candidates) - 1)
            np.testing.assert_allclose(corrected[e, i], plain[e, i] - 0.5 * mean_others, rtol=1e-4, atol=1e-5)
    assert not np.allclose(corrected, plain)
    calibration, _ = fit_candidate_calibration(setup.with_hubness(0.5), tasks, seed=0, split={})
    assert calibration.split["hubness"] == 0.5
