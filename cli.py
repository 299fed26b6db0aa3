"""lookalike command line: parse options, build configs, call one library function per command."""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import IngestConfig, StoreConfig
from pipeline.copies import CopyBenchConfig, make_copy_benchmark
from pipeline.datasets import LFW_ENV, OMNIGLOT_ENV, TLL_ENV, resolve_root
from pipeline.dedup_gallery import GalleryLimits
from pipeline.dedup_output import summary_lines
from pipeline.dedup_run import DedupRequest, DedupRun, ThresholdChoice, run_dedup
from pipeline.device import resolve_device
from pipeline.encoders import EncoderOptions, NoFacePolicy, create_encoder, list_encoders, vector_name
from pipeline.errors import LookalikeError
from pipeline.fused_search import query_images
from pipeline.fusion import parse_encoder_list, parse_weights, parse_weights_or_fit
from pipeline.ingest import ingest_all
from pipeline.moves import undo_moves
from pipeline.protocols.benchmarks import EvalOutput, TaskOptions, eval_lfw, eval_oneshot, eval_retrieval, eval_tll
from pipeline.protocols.common import EvalSetup
from pipeline.protocols.copies import eval_copies
from pipeline.records import IngestSummary
from pipeline.search import QueryConfig, QueryResult
from pipeline.sources import ManifestColumns, list_source
from pipeline.store import VectorStore
from pipeline.submit import SubmitConfig, SubmitResult, submit_tll

app = typer.Typer(
    help="Find images that match (faces, characters, look-alikes, near-duplicates) by nearest-neighbour search.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: "[env X; default Y]" in option help is text, not rich markup
)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    """Warnings for users as one `warning: …` line, without the file, line number and source line."""
    return f"warning: {message}\n"


warnings.formatwarning = _one_line_warning
eval_app = typer.Typer(help="Measure accuracy through the same encoder → Qdrant → query path users get.")
app.add_typer(eval_app, name="eval")
submit_app = typer.Typer(help="Write leaderboard submissions through the same encoder → Qdrant → query path.")
app.add_typer(submit_app, name="submit")
bench_app = typer.Typer(help="Make benchmark sets: transformed copies with ground truth.")
app.add_typer(bench_app, name="bench")

StorePath = Annotated[
    str | None, typer.Option("--store", help="Embedded Qdrant folder [env LOOKALIKE_STORE; default .lookalike/qdrant]")
]
QdrantUrl = Annotated[
    str | None, typer.Option("--qdrant-url", help="Qdrant server URL instead of the embedded store [env QDRANT_URL]")
]
QdrantKey = Annotated[str | None, typer.Option("--qdrant-api-key", help="API key for the server [env QDRANT_API_KEY]")]
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (auto = CUDA when present)")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Qdrant collection name")]
NoFace = Annotated[
    str,
    typer.Option(
        "--no-face", help="Face encoders, no face found: 'skip' (record and report) or 'center' (centre-crop fallback)"
    ),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn errors a user can fix into one line on stderr and exit code 2, not a traceback."""
    try:
        yield
    except LookalikeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _store(store: str | None, url: str | None, key: str | None) -> VectorStore:
    return VectorStore.open(StoreConfig.from_env(store, url, key))


def _no_face(value: str) -> NoFacePolicy:
    if value not in ("skip", "center"):
        raise LookalikeError(f"--no-face {value!r}: expected 'skip' or 'center'")
    return value  # type: ignore[return-value]


DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


@app.command("encoders")
def encoders_command() -> None:
    """List the encoder families and their spec strings."""
    for info in list_encoders():
        typer.echo(f"{info.family:<8} {info.example:<34} {info.summary}\n{'':<8} {'':<34} offline: {info.offline}")


def _print_summary(summary: IngestSummary, report: Path, named: bool = False) -> None:
    prefix = f"{summary.encoder}: " if named else ""
    typer.echo(
        f"{prefix}seen {summary.seen} · ingested {summary.ingested} · already present {summary.already_present} · "
        f"duplicate content {summary.duplicate_content} · no face {summary.no_face} · failed {summary.failed} · "
        f"skipped {summary.skipped} ({summary.images_per_second:.1f} img/s, {summary.seconds:.1f} s)"
    )
    if summary.problems:
        typer.echo(f"{len(summary.problems)} inputs not ingested, with reasons: {report}")


@app.command("ingest")
def ingest_command(
    source: Annotated[Path, typer.Argument(help="Folder (recursive; sub-folder = label) or .csv/.parquet manifest")],
    collection: Collection,
    encoder: Annotated[
        str, typer.Option("--encoder", "-e", help="Encoder spec, or several comma-separated (one named vector each)")
    ] = "dlib",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass and per upsert")] = 32,
    workers: Annotated[int, typer.Option(help="Decode worker processes (0 = in the main process)")] = DEFAULT_WORKERS,
    limit: Annotated[int | None, typer.Option(help="Only the first N images (sorted by path)")] = None,
    max_pixels: Annotated[
        int, typer.Option(help="Reject images with more pixels (decompression-bomb guard)")
    ] = 89_478_485,
    path_column: Annotated[str, typer.Option(help="Manifest column with image paths")] = "path",
    label_column: Annotated[str, typer.Option(help="Manifest column with labels (optional)")] = "label",
    group_column: Annotated[str, typer.Option(help="Manifest column with groups (optional)")] = "group",
    report: Annotated[
        Path | None, typer.Option(help="CSV of inputs not ingested [default .lookalike/reports/NAME-ingest.csv]")
    ] = None,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Embed every image of SOURCE into a collection; re-running adds only what is new."""
    with _user_errors():
        listing = list_source(source, ManifestColumns(path_column, label_column, group_column), limit)
        torch_device = resolve_device(device)
        options = EncoderOptions(no_face=_no_face(no_face))
        models = [create_encoder(spec, torch_device, options) for spec in parse_encoder_list(encoder)]
        report_path = report or Path(".lookalike/reports") / f"{collection}-ingest.csv"
        config = IngestConfig(
            collection,
            batch_size,
            workers,
            max_pixels,
            report_path=report_path,
            progress=progress,
            retry_missing=no_face == "center",
        )
        with _store(store, qdrant_url, qdrant_api_key) as vs:
            summaries = ingest_all(listing, models, vs, config, torch_device)
        for summary in summaries:
            _print_summary(summary, report_path, len(summaries) > 1)


def _parse_where(items: list[str]) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LookalikeError(f"--where {item!r}: expected key=value, e.g. --where label=Aaron_Peirsol")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def _emit(results: list[QueryResult], as_json: bool, as_csv: bool) -> None:
    if as_json:
        rows = [{"query": r.query, "error": r.error, "hits": [_hit_row(h) for h in r.hits]} for r in results]
        typer.echo(json.dumps(rows, indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["query", "rank", "score", "point_id", "path", "label", "error"])
        for r in results:
            for h in r.hits:
                writer.writerow([r.query, h.rank, f"{h.score:.6f}", h.point_id, h.path, h.label or "", ""])
            if r.error:
                writer.writerow([r.query, "", "", "", "", "", r.error])
    else:
        for r in results:
            if r.error:
                typer.echo(f"error: {r.query}: {r.error}", err=True)
                continue
            typer.echo(f"\n{r.query}\n  {'rank':>4}  {'score':>8}  path  label")
            for h in r.hits:
                typer.echo(f"  {h.rank:>3}  {h.score:8.4f}  {h.path}  {h.label or ''}")


def _hit_row(hit: object) -> dict[str, object]:
    row = asdict(hit)  # type: ignore[call-overload]
    row["path"], row["label"] = row["payload"].get("path"), row["payload"].get("label")
    del row["payload"]
    return row


@app.command("query")
def query_command(
    images: Annotated[list[str], typer.Argument(help="Image files, indexed paths or point ids")],
    collection: Collection,
    k: Annotated[int, typer.Option("-k", help="Results per query")] = 10,
    where: Annotated[list[str] | None, typer.Option("--where", help="Payload filter key=value (repeatable)")] = None,
    exclude_self: Annotated[bool, typer.Option(help="Leave the query image itself out when it is indexed")] = False,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder", "-e", help="Which encoder's vectors (default: the collection's only one); A,B fuses several"
        ),
    ] = None,
    weights: Annotated[str | None, typer.Option(help="Fusion weights, one per encoder, e.g. 0.66,0.34")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV output")] = False,
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
) -> None:
    """Print the k nearest images of COLLECTION for each query image."""
    with _user_errors(), _store(store, qdrant_url, qdrant_api_key) as vs:
        config = QueryConfig(collection, k, _parse_where(where or []), exclude_self)
        results = query_images(
            images, vs, config, encoder, weights, lambda spec: create_encoder(spec, resolve_device(device))
        )
    _emit(results, as_json, as_csv)
    if all(r.error for r in results):
        raise typer.Exit(1)


@app.command("collections")
def collections_command(
    store: StorePath = None, qdrant_url: QdrantUrl = None, qdrant_api_key: QdrantKey = None
) -> None:
    """List collections with their point counts and encoders [versions]."""
    with _user_errors(), _store(store, qdrant_url, qdrant_api_key) as vs:
        for c in vs.client.get_collections().collections:
            versions = vs.encoder_versions(c.name)  # {} for collections made before versions were recorded
            specs = vs.encoder_specs(c.name).items()
            encoders = ", ".join(f"{spec} [{versions.get(v, 'version unknown')}]" for v, spec in specs)
            typer.echo(f"{c.name:<30} {vs.count(c.name):>9} points  {encoders}")


EvalEncoder = Annotated[str, typer.Option("--encoder", "-e", help="Encoder spec; see `lookalike encoders`")]
FusedEncoders = Annotated[
    str, typer.Option("--encoder", "-e", help="Encoder spec, or several comma-separated to fuse (dlib,phash:8)")
]
Weights = Annotated[
    str | None,
    typer.Option(help="Fusion weights, one per encoder, e.g. 0.66,0.34, or 'fit' (on training tasks) [default: equal]"),
]
EvalCollection = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection to (re)use [default: <dataset>-<encoder>]")
]
EvalOut = Annotated[
    Path | None, typer.Option("--out", help="Folder for metrics.json and report.html [default runs/eval/…]")
]
Seed = Annotated[int, typer.Option(help="Seed for task sampling")]
Workers = Annotated[int, typer.Option(help="Decode worker processes")]


@dataclass(frozen=True)
class _EvalArgs:
    encoder: str
    no_face: str
    collection: str | None
    device: str
    workers: int
    store: str | None
    qdrant_url: str | None
    qdrant_api_key: str | None
    progress: bool
    weights: str | None = None


@contextmanager
def _eval_setup(args: _EvalArgs, dataset_kind: str, fusion: bool = False) -> Iterator[EvalSetup]:
    torch_device = resolve_device(args.device)
    policy = _no_face(args.no_face)
    specs = parse_encoder_list(args.encoder)
    if len(specs) > 1 and not fusion:
        raise LookalikeError(
            f"--encoder {args.encoder!r}: one encoder here; eval candidates, eval oneshot and submit fuse several"
        )
    weights = parse_weights_or_fit(args.weights, len(specs))
    encoders = [create_encoder(spec, torch_device, EncoderOptions(no_face=policy)) for spec in specs]
    collection = args.collection or "-".join([dataset_kind, *(vector_name(e.name) for e in encoders)])
    with _store(args.store, args.qdrant_url, args.qdrant_api_key) as vs:
        yield EvalSetup(
            vs,
            collection,
            encoders[0],
            torch_device,
            workers=args.workers,
            progress=args.progress,
            retry_missing=policy == "center",
            fused_with=tuple(encoders[1:]),
            weights=weights if weights is not None and len(encoders) > 1 else (),
            fit_weights=weights is None and len(encoders) > 1,
        )


def _finish(output: EvalOutput, out: Path | None) -> None:
    result = output.result
    out_dir = out or Path("runs/eval") / f"{result.protocol}-{result.collection}"
    json_path, html_path = output.write(out_dir)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    typer.echo(f"{result.protocol} · {result.encoder} · {result.dataset}: {shown} ({result.seconds:.1f} s)")
    if result.protocol == "retrieval":
        p1, per_label = (
            result.metrics.get("precision_at_1") or 0.0,
            result.metrics.get("per_label_precision_at_1") or 0.0,
        )
        typer.echo(
            f"  rank 1 has the same label for {p1:.1%} of {result.counts.get('queries', 0)} queries "
            f"({per_label:.1%} averaged over {result.counts.get('labels', 0)} labels with ≥2 images)"
        )
    typer.echo("  " + " · ".join(f"{k} {v}" for k, v in result.counts.items()))
    for note in result.notes:
        typer.echo(f"  note: {note}")
    typer.echo(f"  wrote {json_path} and {html_path}")


@eval_app.command("candidates")
def eval_candidates_command(
    dataset: Annotated[Path | None, typer.Option(help="TLL root (COMP90086 layout) [env LOOKALIKE_TLL]")] = None,
    encoder: FusedEncoders = "dlib",
    weights: Weights = None,
    collection: EvalCollection = None,
    seed: Seed = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of train.csv held out for the tasks")] = 0.2,
    n_candidates: Annotated[int, typer.Option(help="Candidates per task (1 true + foils)")] = 20,
    out: EvalOut = None,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """TLL: top-1/top-2 (leaderboard metric)/top-5/MRR on 20-candidate tasks from held-out training pairs.

    Several encoders are fused; the fusion is calibrated on tasks from the rest of train.csv.
    """
    with _user_errors():
        args = _EvalArgs(
            encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress, weights
        )
        root = resolve_root(dataset, TLL_ENV, "tll", option="--dataset")
        options = TaskOptions(seed=seed, n_candidates=n_candidates, val_fraction=val_fraction)
        with _eval_setup(args, "tll", fusion=True) as setup:
            output = eval_tll(setup, root, options)
        _finish(output, out)


@eval_app.command("oneshot")
def eval_oneshot_command(
    dataset: Annotated[
        Path | None, typer.Option(help="Omniglot set folder(s) or official runs [env LOOKALIKE_OMNIGLOT]")
    ] = None,
    encoder: FusedEncoders = "phash",
    collection: EvalCollection = None,
    n_way: Annotated[int, typer.Option(help="Characters per task")] = 20,
    tasks: Annotated[int, typer.Option(help="Number of tasks")] = 400,
    alphabet: Annotated[list[str] | None, typer.Option(help="Only these alphabets (repeatable)")] = None,
    seed: Seed = 0,
    out: EvalOut = None,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
    weights: Annotated[
        str | None, typer.Option(help="Weights of several fused encoders (an ensemble), e.g. 0.5,0.5 [default: equal]")
    ] = None,
) -> None:
    """Omniglot N-way within-alphabet one-shot accuracy (Lake et al.'s official runs are read when present).

    Several comma-separated encoders (e.g. siamese@A,siamese@B) are fused as an ensemble: each one's scores are
    z-scored over the tasks, then averaged with --weights.
    """
    with _user_errors():
        parse_weights(weights, len(parse_encoder_list(encoder)))  # `fit` has no training tasks here: refused
        args = _EvalArgs(
            encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress, weights
        )
        root = resolve_root(dataset, OMNIGLOT_ENV, "omniglot", option="--dataset")
        options = TaskOptions(seed=seed, n_way=n_way, n_tasks=tasks, alphabets=tuple(alphabet) if alphabet else None)
        with _eval_setup(args, "omniglot", fusion=True) as setup:
            output = eval_oneshot(setup, root, options)
        _finish(output, out)


@eval_app.command("pairs")
def eval_pairs_command(
    dataset: Annotated[Path | None, typer.Option(help="LFW root [env LOOKALIKE_LFW]")] = None,
    encoder: EvalEncoder = "dlib",
    collection: EvalCollection = None,
    train: Annotated[str, typer.Option(help="Pair list for the threshold: DevTrain | View2 | file")] = "DevTrain",
    test: Annotated[str, typer.Option(help="Pair list to score: DevTest | View2 | file")] = "DevTest",
    seed: Seed = 0,
    out: EvalOut = None,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """LFW verification: accuracy at the train-chosen threshold, 10-fold accuracy, ROC AUC, TAR@FAR."""
    with _user_errors():
        args = _EvalArgs(encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress)
        root = resolve_root(dataset, LFW_ENV, "lfw", option="--dataset")
        with _eval_setup(args, "lfw") as setup:
            output = eval_lfw(setup, root, train, test, seed)
        _finish(output, out)


@eval_app.command("retrieval")
def eval_retrieval_command(
    dataset: Annotated[Path | None, typer.Option(help="Folder-per-label images to ingest first (idempotent)")] = None,
    encoder: EvalEncoder = "dlib",
    collection: EvalCollection = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N images of --dataset (sorted by path)")] = None,
    k: Annotated[int, typer.Option("-k", help="Ranks for hit@k / MRR")] = 10,
    out: EvalOut = None,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Every labelled image queries the rest: precision@1 (same label at rank 1), hit@k, MRR, MAP@R."""
    with _user_errors():
        args = _EvalArgs(encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress)
        if dataset is None and collection is None:
            raise LookalikeError("give --dataset (a folder-per-label gallery) or --collection (already ingested)")
        kind = dataset.name if dataset is not None else "gallery"
        with _eval_setup(args, kind) as setup:
            output = eval_retrieval(setup, dataset, k, limit)
        _finish(output, out)


@submit_app.command("tll")
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
    seed: Annotated[int, typer.Option(help="Seed for the train.csv split and the training tasks")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of train.csv held out for --validate")] = 0.2,
    n_candidates: Annotated[int, typer.Option(help="Candidates per training task (1 true + foils)")] = 20,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Totally-Looks-Like: a confidence for each of the 20 candidates of every test row, checked, then written."""
    with _user_errors():
        args = _EvalArgs(
            encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress, weights
        )
        root = resolve_root(dataset, TLL_ENV, "tll", option="--dataset")
        config = SubmitConfig(out, seed, val_fraction, n_candidates, validate, calibration)
        with _eval_setup(args, "tll", fusion=True) as setup:
            result = submit_tll(setup, root, config)
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


FINETUNE_DATA_HELP = (
    "Training data KIND:PATH — folder:DIR (a sub-folder per class) · manifest:FILE (.csv/.parquet with path,label"
    "[,group]) · omniglot:DIR (a set folder, e.g. images_background_small1) · tll:DIR (train.csv pairs; eval's "
    "held-out pairs are never used) · lfw:DIR (pairsDevTrain.txt, images labelled by person) · copies:DIR|FILE "
    "(any folder or manifest of images, no labels: self-supervised copy detection, each image and its "
    "--copies-per-image transformed copies are a class; cnn mode; validation: recall@1 of copies of held-out images)"
)


@app.command("finetune")
def finetune_command(
    data: Annotated[str, typer.Option("--data", help=FINETUNE_DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint folder; it then loads as encoder siamese@DIR")],
    mode: Annotated[str, typer.Option(help="head: MLP on a frozen --backbone | cnn: ResNet from scratch")] = "cnn",
    loss: Annotated[
        str, typer.Option(help="contrastive | triplet | bce (Koch: weighted |f1 − f2|) | supcon (all batch pairs)")
    ] = "contrastive",
    mining: Annotated[str, typer.Option(help="Triplet mining: semihard | batch-hard | all")] = "semihard",
    margin: Annotated[
        float | None, typer.Option(help="Loss margin (default: contrastive 1.0, triplet 0.2; supcon: temperature 0.1)")
    ] = None,
    backbone: Annotated[str, typer.Option(help="head: frozen encoder spec (vectors cached in Qdrant)")] = "dlib",
    hidden_dim: Annotated[int, typer.Option(help="head: hidden width of the MLP")] = 512,
    embedding_dim: Annotated[int | None, typer.Option(help="Output size (head: backbone's; cnn: 128)")] = None,
    input_size: Annotated[int, typer.Option(help="cnn: square input side in pixels")] = 28,
    channels: Annotated[
        int | None, typer.Option(help="cnn: 1 (greyscale) or 3 (RGB) [default: 3 for copies:, else 1]")
    ] = None,
    width: Annotated[int, typer.Option(help="cnn: channels of the first stage (doubled per stage)")] = 32,
    blocks: Annotated[str, typer.Option(help="cnn: residual blocks per stage, comma-separated")] = "1,1,1",
    pool_grid: Annotated[
        int, typer.Option(help="cnn: pool the last feature map to G×G and flatten (1 = global average pooling)")
    ] = 1,
    rotate_classes: Annotated[bool, typer.Option(help="cnn: each 90° rotation of a class is a new class")] = False,
    augment: Annotated[
        bool, typer.Option(help="cnn: random warps per batch (copies: flip + light affine; else affine + elastic)")
    ] = True,
    synthetic_classes: Annotated[
        int,
        typer.Option(
            help="cnn: add N invented pen-stroke characters (20 drawings each) as extra classes — for handwritten "
            "characters with few real classes, e.g. 2000 (README: measured effect)"
        ),
    ] = 0,
    copies_per_image: Annotated[
        int,
        typer.Option(help="copies: transformed copies per image, made once and held in memory (N × (1+K) × C × S² B)"),
    ] = 10,
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping may end sooner)")] = 30,
    batch_size: Annotated[int, typer.Option(help="Examples per batch")] = 128,
    m_per_class: Annotated[int, typer.Option(help="Examples of each class per batch")] = 4,
    steps_per_epoch: Annotated[
        int | None, typer.Option(help="Batches per epoch [default: one pass over the examples]")
    ] = None,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine decay)")] = 1e-3,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better validation metric")] = 8,
    min_delta: Annotated[float, typer.Option(help="Smallest validation gain that counts as better")] = 0.0,
    val_fraction: Annotated[float, typer.Option(help="Share of classes (tll: pairs) held out for validation")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed for the split, sampling and initialisation")] = 0,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="head: backbone vector cache (default: DATASET-BACKBONE)")
    ] = None,
    no_face: NoFace = "skip",
    workers: Workers = DEFAULT_WORKERS,
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Train a Siamese head (on a frozen encoder) or CNN (from scratch); the result is the encoder siamese@OUT."""
    # Imported here: training needs the [train] extra (pytorch-metric-learning, matplotlib), the other commands not.
    from finetune.config import CnnOptions, FinetuneConfig, HeadOptions, parse_blocks
    from finetune.losses import LossConfig
    from finetune.run import run_finetune
    from finetune.train import TrainConfig

    with _user_errors():
        config = FinetuneConfig(
            data=data,
            out=out,
            mode=mode,  # type: ignore[arg-type]
            loss=LossConfig(loss, margin, mining),  # type: ignore[arg-type]
            train=TrainConfig(
                epochs,
                batch_size,
                m_per_class,
                lr,
                patience=patience,
                min_delta=min_delta,
                seed=seed,
                steps_per_epoch=steps_per_epoch,
                progress=progress,
            ),
            head=HeadOptions(
                backbone, hidden_dim, embedding_dim, collection=collection, no_face=_no_face(no_face), workers=workers
            ),
            cnn=CnnOptions(
                input_size,
                channels,
                width,
                parse_blocks(blocks),
                embedding_dim=embedding_dim or 128,
                rotate_classes=rotate_classes,
                augment="auto" if augment else None,
                copies_per_image=copies_per_image,
                pool_grid=pool_grid,
                synthetic_classes=synthetic_classes,
            ),
            val_fraction=val_fraction,
        )
        torch_device = resolve_device(device)
        with _store(store, qdrant_url, qdrant_api_key) if mode == "head" else nullcontext() as vs:
            result = run_finetune(config, torch_device, vs)
    typer.echo(
        f"finetune · {mode} · {loss} · {data}: best {result.metric_name} {result.best_metric:.4f} at epoch "
        f"{result.best_epoch} of {result.epochs_run} (before training {result.baseline_metric:.4f}) · "
        f"{result.train_examples} examples, {result.train_classes} classes · {result.seconds:.1f} s"
    )
    if result.undecodable:
        typer.echo(f"  skipped {result.undecodable} images that could not be decoded")
    typer.echo(f"  wrote {result.out} (model.safetensors, config.json, curves.png, history.json)")
    typer.echo(f"  use it as: -e {result.encoder_spec}")


DEDUP_METHOD_HELP = (
    "auto | blocked | qdrant. blocked: exact top-k in memory, one block of rows against all N at a time (GPU "
    "when --device finds one); qdrant: batched Qdrant queries, for collections whose vectors do not fit in "
    "memory; auto: blocked when the N × D float32 vectors take ≤ 4 GiB"
)
DEDUP_BLOCK_HELP = (
    "blocked: rows per block. Memory is bounded by block × N × 4 bytes of scores plus N × D × 4 bytes of vectors "
    "(100k × 512: 200 MB of vectors) [default: auto = a 256 MiB score block, at most 4096 rows]"
)


@dataclass(frozen=True)
class _DedupArgs:
    threshold: float | None
    precision: float | None
    pairs: Path | None
    k: int
    method: str
    block_size: int | None
    ingest_report: Path | None
    encoder: str | None
    move_to: Path | None
    apply: bool
    gallery_groups: int
    progress: bool


def _dedup_request(collection: str | None, out: Path | None, args: _DedupArgs) -> DedupRequest:
    if not collection:
        raise LookalikeError("dedup needs --collection NAME (or --undo MANIFEST to put moved files back)")
    if args.method not in ("auto", "blocked", "qdrant"):
        raise LookalikeError(f"--method {args.method!r}: expected auto, blocked or qdrant")
    return DedupRequest(
        collection,
        out or Path("runs/dedup") / collection,
        ThresholdChoice(args.threshold, args.precision, args.pairs),
        k=args.k,
        method=args.method,  # type: ignore[arg-type]
        block_size=args.block_size,
        ingest_report=args.ingest_report or Path(".lookalike/reports") / f"{collection}-ingest.csv",
        encoder=args.encoder,
        move_to=args.move_to,
        apply=args.apply,
        progress=args.progress,
        gallery=GalleryLimits(max_groups=args.gallery_groups),
    )


def _print_dedup(run: DedupRun) -> None:
    for line in summary_lines(run.result):
        typer.echo(line)
    if run.calibration is not None:
        c = run.calibration
        typer.echo(
            f"threshold {c.threshold:.4f} from {c.pairs} labelled pairs: precision {c.precision:.4f} "
            f"(asked {c.target_precision:g}), recall {c.recall:.4f}, {c.unscored} pairs unscored"
        )
    if run.manifest is not None:
        counts = " · ".join(f"{s} {n}" for s, n in Counter(m.status for m in run.moves).items()) or "nothing to move"
        verb = "applied" if run.applied else "dry run (add --apply to move)"
        typer.echo(f"{verb}: {counts}; manifest {run.manifest}")
    typer.echo(f"wrote {run.files.groups_csv.parent}/ (groups, pairs .csv/.parquet, summary.json, gallery.html)")


@app.command("dedup")
def dedup_command(
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to scan")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Near-duplicate at or above this similarity (the score `query` prints; phash: equal bits)"),
    ] = None,
    precision: Annotated[
        float | None, typer.Option(help="Instead of --threshold: the lowest threshold reaching this precision")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="Labelled pairs CSV (left,right,same) for --precision, e.g. eval copies' pairs-hard-*.csv"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default runs/dedup/<collection>]")] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Neighbours per image in the k-NN graph")] = 10,
    method: Annotated[str, typer.Option(help=DEDUP_METHOD_HELP)] = "auto",
    block_size: Annotated[int | None, typer.Option(help=DEDUP_BLOCK_HELP)] = None,
    ingest_report: Annotated[
        Path | None,
        typer.Option(
            help="Legacy: also take byte-identical files from this ingest CSV (for collections ingested before "
            "points recorded them in duplicate_paths) [default .lookalike/reports/<collection>-ingest.csv, if present]"
        ),
    ] = None,
    move_to: Annotated[Path | None, typer.Option(help="Move non-keepers here (with a manifest); needs --apply")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Really move (default: dry run, plan only)")] = False,
    undo: Annotated[Path | None, typer.Option(help="Put back every file a moves manifest moved, then stop")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", "-e", help="Which encoder's vectors")] = None,
    gallery_groups: Annotated[int, typer.Option(help="Most groups drawn in gallery.html")] = 200,
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Group exact and near-duplicate images of a collection, suggest a keeper per group; never deletes."""
    with _user_errors():
        if undo is not None:
            restored = Counter(m.status for m in undo_moves(undo))
            typer.echo(" · ".join(f"{s} {n}" for s, n in restored.items()) + f"; manifest {undo} updated")
            return
        args = _DedupArgs(
            threshold,
            precision,
            pairs,
            k,
            method,
            block_size,
            ingest_report,
            encoder,
            move_to,
            apply,
            gallery_groups,
            progress,
        )
        request = _dedup_request(collection, out, args)
        torch_device = resolve_device(device)
        with _store(store, qdrant_url, qdrant_api_key) as vs:
            run = run_dedup(vs, request, torch_device, lambda spec: create_encoder(spec, torch_device))
    _print_dedup(run)


@bench_app.command("copies")
def bench_copies_command(
    source: Annotated[Path, typer.Argument(help="Folder (recursive) or .csv/.parquet manifest of original images")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the benchmark")],
    copies: Annotated[int, typer.Option(help="Transformed copies per original (cycling through 10 transforms)")] = 10,
    originals: Annotated[int, typer.Option(help="Originals that get copies")] = 100,
    distractors: Annotated[int, typer.Option(help="Further reference images with no copies")] = 900,
    negatives: Annotated[int, typer.Option(help="Queries made from images that are not references")] = 100,
    seed: Seed = 0,
) -> None:
    """Make a copy-detection set: crop, resize, JPEG, flip, rotation, colour, greyscale, border, text, combos."""
    with _user_errors():
        summary = make_copy_benchmark(source, out, CopyBenchConfig(originals, copies, distractors, negatives, seed))
    typer.echo(
        f"wrote {summary.out}: {summary.references} references, {summary.copy_queries} copies, "
        f"{summary.negative_queries} negative queries ({summary.undecodable_skipped} undecodable sources passed over)"
    )
    typer.echo(f"  score an encoder: lookalike eval copies {summary.out} -e phash")


@eval_app.command("copies")
def eval_copies_command(
    dataset: Annotated[Path, typer.Argument(help="Folder made by `lookalike bench copies`")],
    encoder: EvalEncoder = "phash",
    collection: EvalCollection = None,
    k: Annotated[int, typer.Option("-k", help="References predicted per query")] = 10,
    out: EvalOut = None,
    workers: Workers = DEFAULT_WORKERS,
    no_face: NoFace = "skip",
    device: Device = "auto",
    store: StorePath = None,
    qdrant_url: QdrantUrl = None,
    qdrant_api_key: QdrantKey = None,
    progress: Progress = True,
) -> None:
    """Copy detection (DISC21 style): µAP, recall at 90 % precision, recall@1 overall and per transform."""
    with _user_errors():
        args = _EvalArgs(encoder, no_face, collection, device, workers, store, qdrant_url, qdrant_api_key, progress)
        with _eval_setup(args, f"copies-{dataset.resolve().name}") as setup:
            output = eval_copies(setup, dataset, k)
        _finish(output, out)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
