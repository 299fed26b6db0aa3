"""Benchmark runs: a dataset adapter + a protocol → an EvalResult (JSON) and a ReportContent (HTML)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.datasets import load_folder, load_lfw, load_official_runs, load_omniglot, load_tll
from pipeline.datasets.base import CandidateTask
from pipeline.datasets.tll import EVAL_CANDIDATES, EVAL_SPLIT_SEED, EVAL_VAL_FRACTION, TllPair, candidate_tasks
from pipeline.evaluation.protocols.candidates import (
    candidate_metrics,
    fit_candidate_calibration,
    oneshot_as_candidates,
    run_candidates,
    worst_failures,
)
from pipeline.evaluation.protocols.pairs import evaluate_pair_runs, missing_floor, pair_failures, run_pairs
from pipeline.evaluation.protocols.retrieval import evaluate_retrieval
from pipeline.evaluation.report import ReportContent, write_report
from pipeline.evaluation.setup import EvalResult, EvalSetup, ingest_for_eval, timed
from pipeline.search.fusion import Calibration


@dataclass(frozen=True)
class EvalOutput:
    """A finished evaluation: numbers to save and print, and the error-analysis report."""

    result: EvalResult
    report: ReportContent
    calibration: Calibration | None = None  # fusion calibration, when several encoders were fused

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """metrics.json and report.html (and calibration.json when encoders were fused) under `out_dir`."""
        json_path = self.result.write_json(out_dir / "metrics.json")
        if self.calibration is not None:
            self.calibration.write_json(out_dir / "calibration.json")
        return json_path, write_report(self.report, out_dir / "report.html")


@dataclass(frozen=True)
class TaskOptions:
    """Task-generation settings shared by the candidate and one-shot protocols."""

    seed: int = EVAL_SPLIT_SEED
    n_candidates: int = EVAL_CANDIDATES  # TLL: candidates per task
    val_fraction: float = EVAL_VAL_FRACTION  # TLL: held-out share of train.csv
    n_way: int = 20  # one-shot
    n_tasks: int = 400  # one-shot
    alphabets: tuple[str, ...] | None = None  # one-shot: restrict to these alphabets


def _counts(*summaries: IngestSummary, **extra: int) -> dict[str, int]:
    """Ingest counts summed over the runs a protocol made, plus protocol counts."""
    keys = ("seen", "ingested", "already_present", "duplicate_content", "no_face", "failed")
    return {**{k: sum(int(getattr(s, k)) for s in summaries) for k in keys}, **extra}


def _result(setup: EvalSetup, protocol: str, root: Path, start: float, **fields: object) -> EvalResult:
    return EvalResult(
        protocol=protocol,
        dataset=str(root),
        encoder=",".join(setup.encoder_names),
        collection=setup.collection,
        seconds=timed() - start,
        **fields,  # type: ignore[arg-type]
    )


def _candidates_output(
    setup: EvalSetup,
    protocol: str,
    root: Path,
    tasks: Sequence[CandidateTask],
    options: TaskOptions,
    start: float,
    calibration: Calibration | None = None,
    label_free: bool = False,
) -> EvalOutput:
    run = run_candidates(setup, tasks, calibration, label_free)
    metrics = candidate_metrics(run)
    counts = _counts(
        run.ingest,
        tasks=len(tasks),
        queries_without_vector=run.queries_without_vector,
        candidates_without_vector=run.candidates_without_vector,
    )
    weights = run.calibration.weights if run.calibration else None
    settings = {**asdict(options), "hubness": setup.hubness, **({"weights": weights} if weights else {})}
    result = _result(setup, protocol, root, start, seed=options.seed, counts=counts, metrics=metrics, settings=settings)
    title = f"{protocol} · {root.name} · {' + '.join(setup.encoder_names)}"
    return EvalOutput(result, ReportContent(title, {**metrics, **counts}, worst_failures(run)), run.calibration)


def fit_tll_calibration(setup: EvalSetup, pairs: Sequence[TllPair], options: TaskOptions) -> Calibration:
    """Fusion calibration fitted on 20-candidate tasks built (with `options.seed`) from these training pairs."""
    tasks = candidate_tasks(pairs, options.n_candidates, options.seed)
    split = {"source": "train.csv", "pairs": len(pairs), "val_fraction": options.val_fraction}
    calibration, _ = fit_candidate_calibration(setup, tasks, options.seed, split)
    return calibration


@dataclass(frozen=True)
class TllTasks:
    """A TLL root read and checked for local validation: the training pairs and the held-out tasks."""

    root: Path
    train: tuple[TllPair, ...]
    tasks: tuple[CandidateTask, ...]


def tll_tasks(root: Path, options: TaskOptions) -> TllTasks:
    """Read train.csv, split it and build the held-out 20-candidate tasks: everything `eval_tll` needs from the
    dataset, so a command can check it before any encoder loads.

    Raises:
        DatasetError: train.csv is malformed or too short for the split or the tasks.
    """
    train, held_out = load_tll(root).split_train(options.seed, options.val_fraction)
    tasks = candidate_tasks(held_out, options.n_candidates, options.seed)
    return TllTasks(root, tuple(train), tuple(tasks))


def eval_tll(setup: EvalSetup, root: Path | TllTasks, options: TaskOptions) -> EvalOutput:
    """TLL local validation: 20-candidate tasks (true right + 19 seeded foils) on a held-out split of train.csv
    (`root` read here, or already read by `tll_tasks`).

    With several encoders, the fusion calibration is fitted on tasks from the rest of train.csv.
    """
    start = timed()
    data = root if isinstance(root, TllTasks) else tll_tasks(root, options)
    calibration = fit_tll_calibration(setup, data.train, options) if len(setup.all_encoders) > 1 else None
    return _candidates_output(setup, "candidates", data.root, list(data.tasks), options, start, calibration)


def eval_oneshot(setup: EvalSetup, root: Path, options: TaskOptions) -> EvalOutput:
    """N-way within-alphabet one-shot on Omniglot folders, or Lake et al.'s official runs when present.

    Several encoders (an ensemble) are fused with their given weights after each one's scores are z-scored over
    these tasks (no answers are used: there are no training tasks to fit a calibration on).
    """
    start = timed()
    if any(root.glob("run[0-9][0-9]")) or (root / "class_labels.txt").is_file():
        tasks = load_official_runs(root)
    else:
        dataset = load_omniglot(root)
        tasks = dataset.oneshot_tasks(options.n_way, options.n_tasks, options.seed, options.alphabets)
    return _candidates_output(setup, "oneshot", root, oneshot_as_candidates(tasks), options, start, label_free=True)


def eval_lfw(setup: EvalSetup, root: Path, train: str = "DevTrain", test: str = "DevTest", seed: int = 0) -> EvalOutput:
    """Verification: threshold from `train` pairs, accuracy on `test` pairs, 10-fold accuracy, ROC."""
    start = timed()
    dataset = load_lfw(root)
    train_run, train_ingest = run_pairs(setup, dataset.pairs(train))
    test_run, test_ingest = run_pairs(setup, dataset.pairs(test))
    evaluation = evaluate_pair_runs(train_run, test_run, seed=seed)
    counts = _counts(
        train_ingest,
        test_ingest,
        train_pairs=len(train_run.pairs),
        test_pairs=len(test_run.pairs),
        pairs_without_vector=train_run.missing + test_run.missing,
    )
    notes = (*evaluation.notes, "pairs where an image has no vector are scored as different (lowest score)")
    result = _result(
        setup,
        "pairs",
        root,
        start,
        seed=seed,
        counts=counts,
        metrics=evaluation.metrics,
        notes=notes,
        settings={"train": train, "test": test},
    )
    failures = pair_failures(test_run, evaluation.threshold, missing_floor(train_run, test_run))
    title = f"pairs · {root.name} {test} · {setup.encoder.name}"
    report = ReportContent(
        title, {**evaluation.metrics, **counts}, pair_failures=failures, roc=evaluation.roc, notes=notes
    )
    return EvalOutput(result, report)


def eval_retrieval(setup: EvalSetup, root: Path | None, k: int = 10, limit: int | None = None) -> EvalOutput:
    """Every labelled image queries the rest; `root` (folder-per-label) is ingested first when given."""
    start = timed()
    counts: dict[str, int] = {}
    if root is not None:
        images = load_folder(root)[:limit] if limit else load_folder(root)
        counts = _counts(ingest_for_eval(setup, [ImageRecord(i.path, i.label) for i in images]))
    metrics, failures = evaluate_retrieval(setup.store, setup.collection, setup.spec, k, setup.progress)
    values = {k: v for k, v in asdict(metrics).items() if k not in ("queries", "labels", "points", "seconds")}
    counts.update(queries=metrics.queries, labels=metrics.labels, points=metrics.points)
    result = _result(setup, "retrieval", root or Path(setup.collection), start, seed=0, counts=counts, metrics=values)
    title = f"retrieval · {setup.collection} · {setup.encoder.name}"
    return EvalOutput(result, ReportContent(title, {**values, **counts}, failures))
