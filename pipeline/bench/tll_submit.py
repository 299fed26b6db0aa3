"""Leaderboard submissions: Totally-Looks-Like test tasks → fused, calibrated confidences → a checked CSV.

The path is the production one: the test (and training) images are ingested into one collection with a named
vector per encoder, each row of test_candidates.csv is scored by candidate-restricted Qdrant queries, the
encoders are fused and calibrated (`pipeline.search.fusion`) on tasks from the training split of train.csv, and the
file is checked against sample-submission.csv before it is written. Every file of the dataset is read and checked
(`check_inputs`) before anything slow starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.core.errors import LookalikeError, SubmissionError
from pipeline.datasets.base import CandidateTask
from pipeline.datasets.tll import (
    SampleSubmission,
    TllDataset,
    TllPair,
    candidate_tasks,
    load_tll,
    read_sample_submission,
)
from pipeline.evaluation.protocols.candidates import candidate_metrics, run_candidates, score_tasks
from pipeline.evaluation.runner import TaskOptions, fit_tll_calibration
from pipeline.evaluation.setup import EvalSetup, timed
from pipeline.search.fusion import Calibration

_SHOWN = 3  # how many mismatching ids an error names


@dataclass(frozen=True)
class SubmitConfig:
    """What `submit_tll` writes and how it calibrates.

    Attributes:
        out: the submission CSV; the calibration goes beside it as `<stem>.calibration.json`, and the run's
            counts and validation numbers as `<stem>.run.json`.
        seed, val_fraction, n_candidates: the split of train.csv and the training tasks built from it.
        validate: also score the held-out split of train.csv (fused and each encoder alone).
        calibration: reuse this saved calibration instead of fitting one (its encoders must match).
    """

    out: Path
    seed: int = 0
    val_fraction: float = 0.2
    n_candidates: int = 20
    validate: bool = False
    calibration: Path | None = None

    @property
    def calibration_path(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.calibration.json")

    @property
    def run_path(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.run.json")


@dataclass(frozen=True)
class SubmitResult:
    """A written submission and what it took."""

    out: Path
    calibration_path: Path
    rows: int
    candidates: int
    calibration: Calibration
    checked_against: str | None  # the sample submission the file was checked against, if there was one
    validation: Mapping[str, float | None] | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class SubmitInputs:
    """Every TLL file a submission reads, checked (`check_inputs`): the test tasks, the sample and the split."""

    dataset: TllDataset
    tasks: tuple[CandidateTask, ...]
    sample: SampleSubmission | None
    train: tuple[TllPair, ...]
    held_out: tuple[TllPair, ...]


def check_inputs(root: Path, config: SubmitConfig) -> SubmitInputs:
    """Read and check the whole dataset a submission uses, before any encoder, store or embedding work.

    Raises:
        DatasetError: the layout is wrong; a CSV is malformed, names an id that is not a plain file name, repeats
            a left id or a row's candidate, or references a missing image; sample-submission.csv has other
            columns than test_candidates.csv; train.csv is too short for the split or the training tasks.
        SubmissionError: sample-submission.csv lists other left ids, or in another order, than test_candidates.csv.
    """
    dataset = load_tll(root)
    sample = dataset.read_sample()
    tasks = dataset.test_tasks(sample)  # an extra `c20` in either file is refused here, not after the embedding
    if sample is not None:
        _compare_ids([t.query_id for t in tasks], sample.lefts, sample.path)
    train, held_out = dataset.split_train(config.seed, config.val_fraction)
    if config.calibration is None:
        candidate_tasks(train, config.n_candidates, config.seed)  # too few right images: refused now, not later
    if config.validate:
        candidate_tasks(held_out, config.n_candidates, config.seed)
    return SubmitInputs(dataset, tuple(tasks), sample, tuple(train), tuple(held_out))


def submit_tll(setup: EvalSetup, root: Path | SubmitInputs, config: SubmitConfig) -> SubmitResult:
    """Write a TLL submission: one row per test left image, a confidence per candidate.

    Args:
        root: the dataset root, read and checked here, or its `check_inputs` result (a command checks first, before
            any encoder loads, and passes it on so nothing is read twice).

    Raises:
        DatasetError, SubmissionError: the dataset does not pass `check_inputs` (checked before any slow work), or
            the frame does not match sample-submission.csv; nothing is written then.
        LookalikeError: a reused calibration was made for other encoders or weights.
    """
    start = timed()
    inputs = root if isinstance(root, SubmitInputs) else check_inputs(root, config)
    tasks, sample = inputs.tasks, inputs.sample.path if inputs.sample is not None else None
    options = TaskOptions(seed=config.seed, n_candidates=config.n_candidates, val_fraction=config.val_fraction)
    calibration = _calibration(setup, inputs.train, options, config)
    validation = _validate(setup, inputs.held_out, options, calibration) if config.validate else None
    per_encoder, summary = score_tasks(setup, tasks)
    frame = submission_frame(tasks, calibration.confidences(per_encoder))
    write_submission(frame, config.out, sample)
    calibration.write_json(config.calibration_path)
    counts = {
        "test_rows": len(tasks),
        "ingested": summary.ingested,
        "already_present": summary.already_present,
        "no_face": summary.no_face,
        "failed": summary.failed,
        "rows_without_any_score": int(np.isnan(calibration.fuse(per_encoder)).all(axis=1).sum()),
    }
    result = SubmitResult(
        config.out,
        config.calibration_path,
        len(tasks),
        per_encoder.shape[2],
        calibration,
        str(sample) if sample else None,
        validation,
        counts,
        timed() - start,
    )
    _write_run(result, inputs.dataset, config)
    return result


def _calibration(setup: EvalSetup, train: Sequence[TllPair], options: TaskOptions, config: SubmitConfig) -> Calibration:
    if config.calibration is None:
        return fit_tll_calibration(setup, train, options)
    if setup.fit_weights:
        raise LookalikeError(
            f"weights 'fit' (fit new fusion weights) with the saved calibration {config.calibration}: choose one",
            setting="weights",
        )
    calibration = Calibration.load(config.calibration)
    if calibration.encoders != setup.encoder_names:
        raise LookalikeError(
            f"calibration {config.calibration} was fitted for {','.join(calibration.encoders)}, not "
            f"{','.join(setup.encoder_names)}; use the same encoders, or fit a new calibration instead of the saved "
            "one",
            setting="encoder",
        )
    fitted_hubness = float(calibration.split.get("hubness", 0.0))
    if fitted_hubness != setup.hubness:
        raise LookalikeError(
            f"calibration {config.calibration} was fitted on scores with hubness correction {fitted_hubness:g}, not "
            f"{setup.hubness:g}; use the same hubness correction, or fit a new calibration instead of the saved one",
            setting="hubness",
        )
    if setup.weights and not np.allclose(calibration.weights, setup.weights):
        raise LookalikeError(
            f"calibration {config.calibration} has weights {list(calibration.weights)}; give no weights to use them",
            setting="weights",
        )
    return calibration


def _validate(
    setup: EvalSetup, held_out: Sequence[TllPair], options: TaskOptions, calibration: Calibration
) -> dict[str, float | None]:
    """top-1/top-2 (fused and per encoder) on tasks from the held-out pairs, with the submission's calibration."""
    tasks = candidate_tasks(held_out, options.n_candidates, options.seed)
    fused = calibration if len(setup.all_encoders) > 1 else None
    metrics = candidate_metrics(run_candidates(setup, tasks, fused))
    return {"tasks": float(len(tasks)), **metrics}


def submission_frame(tasks: Sequence[CandidateTask], confidences: np.ndarray) -> pl.DataFrame:
    """`left,c0,…,c{C-1}`: one row per task in task order, the confidence of each candidate in its column."""
    n_cand = confidences.shape[1]
    columns: dict[str, object] = {"left": [t.query_id for t in tasks]}
    columns.update({f"c{j}": confidences[:, j].astype(np.float64) for j in range(n_cand)})
    return pl.DataFrame(columns)


def check_submission(frame: pl.DataFrame, sample: Path | None) -> None:
    """Refuse a malformed submission.

    Checks: columns `left,c0..` (those of `sample` when given), left ids unique (and equal to the sample's, in
    its order), every confidence finite and in [0, 1].

    Raises:
        SubmissionError: one line saying what is wrong and where.
        DatasetError: `sample` itself is malformed (`read_sample_submission`).
    """
    checked = read_sample_submission(sample) if sample is not None else None
    expected = list(checked.columns) if checked is not None else ["left", *(f"c{j}" for j in range(frame.width - 1))]
    if frame.columns != expected:
        raise SubmissionError(f"submission columns {','.join(frame.columns)} != expected {','.join(expected)}")
    if checked is not None:
        _compare_ids(frame["left"].to_list(), checked.lefts, checked.path)
    duplicates = frame.filter(pl.col("left").is_duplicated())["left"].unique().sort().to_list()
    if duplicates:
        raise SubmissionError(f"submission repeats left ids: {', '.join(map(str, duplicates[:_SHOWN]))}")
    values = frame.select(expected[1:]).to_numpy().astype(np.float64)  # (rows, C)
    bad = ~(np.isfinite(values) & (values >= 0.0) & (values <= 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise SubmissionError(
            f"submission has {int(bad.sum())} confidences that are NaN or outside [0, 1], first: row "
            f"{frame['left'][row]!s} column {expected[col + 1]} = {values[row, col]}"
        )


def write_submission(frame: pl.DataFrame, path: Path, sample: Path | None) -> Path:
    """Check the frame (`check_submission`), then write it as CSV (through a temporary file, so a failed write
    never leaves half a submission).

    Raises:
        SubmissionError: the frame is malformed; nothing is written.
        DatasetError: `sample` is malformed; nothing is written.
    """
    check_submission(frame, sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.write_csv(partial)
    os.replace(partial, path)
    return path


def _compare_ids(have: Sequence[str], want: Sequence[str], sample: Path) -> None:
    if list(have) == list(want):
        return
    if len(have) != len(want):
        raise SubmissionError(f"submission has {len(have)} rows, {sample} has {len(want)}")
    diffs = [(i, a, b) for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b][:_SHOWN]
    shown = "; ".join(f"row {i + 1}: {a!r} vs {b!r}" for i, a, b in diffs)
    raise SubmissionError(f"submission left ids differ from {sample} (same ids in the same order needed): {shown}")


def _write_run(result: SubmitResult, dataset: TllDataset, config: SubmitConfig) -> None:
    """`<stem>.run.json`: dataset, encoders, counts, validation numbers and the calibration, for the record."""
    record = {
        "dataset": str(dataset.root),
        "submission": str(result.out),
        "rows": result.rows,
        "candidates": result.candidates,
        "checked_against": result.checked_against,
        "counts": dict(result.counts),
        "validation": dict(result.validation) if result.validation is not None else None,
        "calibration": asdict(result.calibration),
        "seconds": round(result.seconds, 1),
    }
    config.run_path.write_text(json.dumps(record, indent=2) + "\n")
