"""`dedup`: group exact and near-duplicate images of a collection, move non-keepers on request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from commands.common import (
    STORE_OPTIONS,
    RunOptions,
    exit_partial_if,
    open_range,
    user_errors,
    with_run_options,
)
from pipeline.core.config import signing_key_path
from pipeline.core.conventions import ingest_report_path
from pipeline.core.device import resolve_device
from pipeline.core.errors import LookalikeError
from pipeline.core.signing import SigningKey
from pipeline.dedup.gallery import GalleryLimits
from pipeline.dedup.moves import Move, undo_moves
from pipeline.dedup.output import summary_lines
from pipeline.dedup.run import DedupRequest, DedupRun, ThresholdChoice, run_dedup
from pipeline.encoders import create_encoder

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
        ingest_report=args.ingest_report or ingest_report_path(collection),
        encoder=args.encoder,
        move_to=args.move_to,
        apply=args.apply,
        progress=args.progress,
        gallery=GalleryLimits(max_groups=args.gallery_groups),
        signing_key=SigningKey.load(signing_key_path()) if args.move_to is not None else None,
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
        counts = _counts(run.moves)
        verb = "applied" if run.applied else "dry run (add --apply to move)"
        typer.echo(f"{verb}: {counts}; manifest {run.manifest}")
    typer.echo(f"wrote {run.files.groups_csv.parent}/ (groups, pairs .csv/.parquet, summary.json, gallery.html)")


def _undo(manifest: Path) -> None:
    moves = undo_moves(manifest, SigningKey.load(signing_key_path()))
    for m in moves:
        if m.status == "failed":
            typer.echo(f"error: {m.moved_to} → {m.original}: {m.reason}", err=True)
    typer.echo(_counts(moves) + f"; manifest {manifest} updated")
    exit_partial_if(
        sum(m.status == "failed" for m in moves),
        "of the moved files could not be put back (reasons above); the manifest keeps them as moved",
    )


def _counts(moves: tuple[Move, ...] | list[Move]) -> str:
    return " · ".join(f"{s} {n}" for s, n in Counter(m.status for m in moves).items()) or "nothing to move"


@with_run_options("device", *STORE_OPTIONS, "progress")
def dedup_command(
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to scan")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Near-duplicate at or above this similarity (the score `query` prints; phash: equal bits)"),
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(
            callback=open_range(0.0, 1.0, low_open=True),
            help="Instead of --threshold: the lowest threshold reaching this precision",
        ),
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="Labelled pairs CSV (left,right,same) for --precision, e.g. eval copies' pairs-hard-*.csv"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default runs/dedup/<collection>]")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Neighbours per image in the k-NN graph")] = 10,
    method: Annotated[str, typer.Option(help=DEDUP_METHOD_HELP)] = "auto",
    block_size: Annotated[int | None, typer.Option(min=1, help=DEDUP_BLOCK_HELP)] = None,
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
    gallery_groups: Annotated[int, typer.Option(min=0, help="Most groups drawn in gallery.html")] = 200,
    *,
    run: RunOptions,
) -> None:
    """Group exact and near-duplicate images of a collection, suggest a keeper per group; never deletes.

    Moves (--move-to … --apply) re-check every file's sha256 at the moment of acting and are recorded in a signed
    manifest that --undo puts back; exit 3 when a move or an undo of some file failed (reasons in the manifest).
    """
    with user_errors():
        if undo is not None:
            _undo(undo)
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
            run.progress,
        )
        request = _dedup_request(collection, out, args)
        torch_device = resolve_device(run.device)
        with run.open_store() as vs:
            dedup_run = run_dedup(vs, request, torch_device, lambda spec: create_encoder(spec, torch_device))
    _print_dedup(dedup_run)
    exit_partial_if(
        sum(m.status == "failed" for m in dedup_run.moves),
        "of the moves failed on filesystem errors; each is in the manifest with its reason",
    )
