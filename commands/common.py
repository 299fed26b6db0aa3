"""Options, error handling and eval setup shared by the commands."""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, fields
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.globals import get_current_context  # typer ≥ 0.29 vendors click as typer._click

from pipeline.core.config import ClusterLayout, StoreConfig
from pipeline.core.conventions import default_collection, retries_missing
from pipeline.core.device import resolve_device
from pipeline.core.errors import LookalikeError
from pipeline.encoders import EncoderOptions, NoFacePolicy, create_encoder
from pipeline.evaluation.runner import EvalOutput
from pipeline.evaluation.setup import EvalSetup, Scoring
from pipeline.index.collection import IndexedCollection
from pipeline.search.fusion import parse_encoder_list, parse_weights_or_fit
from pipeline.store import VectorStore

StorePath = Annotated[
    str | None, typer.Option("--store", help="Embedded Qdrant folder [env LOOKALIKE_STORE; default .lookalike/qdrant]")
]
QdrantUrl = Annotated[
    str | None, typer.Option("--qdrant-url", help="Qdrant server URL instead of the embedded store [env QDRANT_URL]")
]
QdrantKey = Annotated[str | None, typer.Option("--qdrant-api-key", help="API key for the server [env QDRANT_API_KEY]")]
Shards = Annotated[
    int | None,
    typer.Option(
        "--shards",
        min=1,
        help="Server mode, collections this run creates: shards each is split into across the cluster's nodes "
        "[server's default: 1; an existing collection keeps its own]",
    ),
]
Replicas = Annotated[
    int | None,
    typer.Option(
        "--replicas",
        min=1,
        help="Server mode, collections this run creates: copies of each shard, each on another node [server's "
        "default: 1]",
    ),
]
WriteConsistency = Annotated[
    int | None,
    typer.Option(
        "--write-consistency",
        min=1,
        help="Server mode, collections this run creates: copies of a shard that must apply a write before it is "
        "acknowledged, at most --replicas [server's default: 1]",
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (auto = CUDA when present)")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Qdrant collection name")]
NoFace = Annotated[
    str,
    typer.Option(
        "--no-face", help="Face encoders, no face found: 'skip' (record and report) or 'center' (centre-crop fallback)"
    ),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars")]
EvalEncoder = Annotated[str, typer.Option("--encoder", "-e", help="Encoder spec; see `lookalike encoders`")]
FusedEncoders = Annotated[
    str, typer.Option("--encoder", "-e", help="Encoder spec, or several comma-separated to fuse (dlib,phash:8)")
]
Weights = Annotated[
    str | None,
    typer.Option(help="Fusion weights, one per encoder, e.g. 0.66,0.34, or 'fit' (on training tasks) [default: equal]"),
]
Hubness = Annotated[
    float,
    typer.Option(
        min=0.0,
        help="Hubness correction β: lower each candidate's score by β × its mean similarity to the task's other "
        "candidates, so one that resembles them all stops winning (0 = off; README: 0.25 measured on Omniglot)",
    ),
]
EvalCollection = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection to (re)use [default: <dataset>-<encoder>]")
]
EvalOut = Annotated[
    Path | None, typer.Option("--out", help="Folder for metrics.json and report.html [default runs/eval/…]")
]
Seed = Annotated[int, typer.Option(min=0, help="Seed for task sampling")]
Workers = Annotated[int, typer.Option(min=0, help="Decode worker processes (0 = in the main process)")]


class ExitCode(IntEnum):
    """What `lookalike` exits with (the README's exit-code table)."""

    OK = 0  # everything asked for was done
    BUG = 1  # an unexpected error: a traceback, please report it
    USAGE = 2  # bad usage, bad input file, or refused (store locked, content changed, …): nothing was half-done
    PARTIAL = 3  # the run finished, but some inputs failed: the report/manifest names each one and why
    INTERRUPTED = 130  # Ctrl-C (SIGINT); what was acknowledged is kept and a re-run resumes
    TERMINATED = 143  # kill / SIGTERM, handled like Ctrl-C


def option_hint(setting: str | None) -> str:
    """` (set by --flag)` for the running command's option that sets `setting` (a config field name), else ""."""
    context = get_current_context(silent=True)
    if setting is None or context is None:
        return ""
    for param in context.command.params:
        if param.name == setting and param.opts:
            return f" (set by {max(param.opts, key=len)})"
    return ""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a user can fix (ours, and the system's: full disk, permissions) into one line on stderr and exit
    code 2, not a traceback."""
    try:
        yield
    except LookalikeError as e:
        typer.echo(f"error: {e}{option_hint(e.setting)}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except OSError as e:  # full disk, read-only folder, permissions: what the system said, about which file
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror or e}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None


def exit_partial_if(failed: int, what: str) -> None:
    """End with ExitCode.PARTIAL and `error: <failed> <what>` on stderr when `failed` inputs of a finished run
    failed."""
    if failed:
        typer.echo(f"error: {failed} {what}", err=True)
        raise typer.Exit(ExitCode.PARTIAL)


def open_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[..., Any]:
    """A typer option callback refusing values outside [low, high] (each end open on request), None passing: for
    fractions and similar, where typer's min/max cannot say "above 0"."""

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above or value != value:  # NaN too
            raise typer.BadParameter(
                f"{value:g} is not in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            )
        return value

    return check


DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunOptions:
    """The options many commands share (device, store, workers, …), declared once: see `with_run_options`."""

    device: str = "auto"
    store: str | None = None
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    workers: int = DEFAULT_WORKERS
    no_face: str = "skip"
    progress: bool = True
    shards: int | None = None
    replicas: int | None = None
    write_consistency: int | None = None

    def __post_init__(self) -> None:
        """Refuse a cluster layout no server could keep, or one without a server, before any work.

        Raises:
            LookalikeError: naming the layout setting (`user_errors` adds its flag).
        """
        if not self.cluster_layout().is_default:
            self.store_config()

    def cluster_layout(self) -> ClusterLayout:
        return ClusterLayout(self.shards, self.replicas, self.write_consistency)

    def store_config(self) -> StoreConfig:
        """The store these options name, environment variables filling what they leave out (`StoreConfig.from_env`)."""
        return StoreConfig.from_env(self.store, self.qdrant_url, self.qdrant_api_key, self.cluster_layout())

    def open_store(self) -> VectorStore:
        return VectorStore.open(self.store_config())

    def no_face_policy(self) -> NoFacePolicy:
        """--no-face checked. Raises LookalikeError for anything but skip or center."""
        if self.no_face not in ("skip", "center"):
            raise LookalikeError(f"--no-face {self.no_face!r}: expected 'skip' or 'center'")
        return self.no_face  # type: ignore[return-value]


_RUN_OPTION_TYPES: dict[str, Any] = {
    "device": Device,
    "store": StorePath,
    "qdrant_url": QdrantUrl,
    "qdrant_api_key": QdrantKey,
    "workers": Workers,
    "no_face": NoFace,
    "progress": Progress,
    "shards": Shards,
    "replicas": Replicas,
    "write_consistency": WriteConsistency,
}
STORE_OPTIONS = ("store", "qdrant_url", "qdrant_api_key")
ALL_RUN_OPTIONS = tuple(f.name for f in fields(RunOptions))


def with_option_group(
    param: str, group: type[Any], names: Sequence[str] = (), types: Mapping[str, Any] | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the fields of dataclass `group` (only `names`, when given) as typer options after its own.

    The command declares a keyword-only `param: group` instead of the options themselves; typer sees a signature
    with the options in its place, and the wrapper gathers their values into one `group` instance. Each option's
    type and typer metadata come from `types`, else from the field's own `Annotated[…, typer.Option(…)]` hint; its
    default from the field. Stack one decorator per group.
    """
    hints = types or typing.get_type_hints(group, include_extras=True)
    chosen = list(names) or [f.name for f in fields(group)]
    defaults = {f.name: f.default for f in fields(group) if f.default is not MISSING}

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != param]
        options = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(n, inspect.Parameter.empty), annotation=hints[n]
            )
            for n in chosen
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            with user_errors():  # a group that checks its fields refuses in one line, before the command runs
                value = group(**{n: kwargs.pop(n) for n in chosen})
            command(*args, **{param: value}, **kwargs)

        parameters = [*own, *options]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def with_run_options(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared options `names` (fields of `RunOptions`) as typer options, gathered into a
    keyword-only `run: RunOptions` (`with_option_group`)."""
    return with_option_group("run", RunOptions, names, _RUN_OPTION_TYPES)


@dataclass(frozen=True)
class EvalArgs:
    """What every eval-like command takes besides its protocol's own options."""

    encoder: str
    collection: str | None
    run: RunOptions
    weights: str | None = None
    hubness: float = 0.0


@contextmanager
def eval_setup(args: EvalArgs, dataset_kind: str, fusion: bool = False) -> Iterator[EvalSetup]:
    """The encoders, store and collection of an eval run (the collection defaults to <dataset>-<encoders>)."""
    run = args.run
    torch_device = resolve_device(run.device)
    policy = run.no_face_policy()
    specs = parse_encoder_list(args.encoder)
    if len(specs) > 1 and not fusion:
        raise LookalikeError(
            f"--encoder {args.encoder!r}: one encoder here; eval candidates, eval oneshot and submit fuse several"
        )
    weights = parse_weights_or_fit(args.weights, len(specs))
    encoders = [create_encoder(spec, torch_device, EncoderOptions(no_face=policy)) for spec in specs]
    collection = args.collection or default_collection(dataset_kind, [e.name for e in encoders])
    with run.open_store() as vs:
        index = IndexedCollection(
            vs,
            collection,
            tuple(encoders),
            torch_device,
            workers=run.workers,
            progress=run.progress,
            retry_missing=retries_missing(policy),
        )
        fused = len(encoders) > 1
        scoring = Scoring(
            weights=weights if weights is not None and fused else (),
            fit_weights=weights is None and fused,
            hubness=args.hubness,
        )
        yield EvalSetup(index, scoring)


def finish_eval(output: EvalOutput, out: Path | None) -> None:
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
