"""Options, error handling and eval setup shared by the commands."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import StoreConfig
from pipeline.device import resolve_device
from pipeline.encoders import EncoderOptions, NoFacePolicy, create_encoder, vector_name
from pipeline.errors import LookalikeError
from pipeline.fusion import parse_encoder_list, parse_weights_or_fit
from pipeline.protocols.benchmarks import EvalOutput
from pipeline.protocols.common import EvalSetup
from pipeline.store import VectorStore

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
def user_errors() -> Iterator[None]:
    """Turn errors a user can fix into one line on stderr and exit code 2, not a traceback."""
    try:
        yield
    except LookalikeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def open_store(store: str | None, url: str | None, key: str | None) -> VectorStore:
    return VectorStore.open(StoreConfig.from_env(store, url, key))


def no_face_policy(value: str) -> NoFacePolicy:
    if value not in ("skip", "center"):
        raise LookalikeError(f"--no-face {value!r}: expected 'skip' or 'center'")
    return value  # type: ignore[return-value]


DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


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
class EvalArgs:
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
def eval_setup(args: EvalArgs, dataset_kind: str, fusion: bool = False) -> Iterator[EvalSetup]:
    torch_device = resolve_device(args.device)
    policy = no_face_policy(args.no_face)
    specs = parse_encoder_list(args.encoder)
    if len(specs) > 1 and not fusion:
        raise LookalikeError(
            f"--encoder {args.encoder!r}: one encoder here; eval candidates, eval oneshot and submit fuse several"
        )
    weights = parse_weights_or_fit(args.weights, len(specs))
    encoders = [create_encoder(spec, torch_device, EncoderOptions(no_face=policy)) for spec in specs]
    collection = args.collection or "-".join([dataset_kind, *(vector_name(e.name) for e in encoders)])
    with open_store(args.store, args.qdrant_url, args.qdrant_api_key) as vs:
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
