"""`dedup`: group exact and near-duplicate images of a collection, move non-keepers on request."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from commands.common import (
    STORE_OPTIONS,
    RunOptions,
    exit_partial_if,
    open_range,
    user_errors,
    with_option_group,
    with_run_options,
)
from pipeline.core.config import signing_key_path
from pipeline.core.conventions import ingest_report_path
from pipeline.core.device import resolve_device
from pipeline.core.errors import LookalikeError
from pipeline.core.signing import SigningKey
from pipeline.dedup.gallery import GalleryLimits
from pipeline.dedup.graph import AUTO_ANN_MIN_POINTS, DedupMethod, GraphOptions, parse_method
from pipeline.dedup.incremental import check_new
from pipeline.dedup.moves import Move, undo_moves
from pipeline.dedup.new_output import new_summary_lines, write_new_outputs
from pipeline.dedup.new_records import NewRequest
from pipeline.dedup.output import summary_lines
from pipeline.dedup.run import DedupRequest, DedupRun, ThresholdChoice, run_dedup
from pipeline.encoders import create_encoder
from pipeline.index.embed import EmbedConfig


def _method(name: str) -> DedupMethod:
    try:
        return parse_method(name)
    except LookalikeError as e:
        raise typer.BadParameter(str(e)) from None


_GRAPH_OPTION_TYPES: dict[str, Any] = {
    "k": Annotated[int, typer.Option("--k", "-k", min=1, help="Neighbours per image in the k-NN graph")],
    "method": Annotated[
        DedupMethod,
        typer.Option(
            parser=_method,
            metavar="[auto|exact|ivf|ann]",
            help="exact: every pair scored, one block of rows against all N at a time (time ∝ N², GPU when --device "
            "finds one); ivf: k-means lists over the vectors in memory, each list searched against its --nprobe "
            "nearest (time ∝ N^1.5, memory 2 × N × D × 4 bytes: the fastest on one machine); ann: one query per "
            "image through the store's HNSW index (never "
            f"all vectors in memory; for a server or cluster); auto: exact below {AUTO_ANN_MIN_POINTS:,} images, "
            "then ivf while the vectors fit in 4 GiB, ann beyond. blocked / qdrant: older names",
        ),
    ],
    "block_size": Annotated[
        int | None,
        typer.Option(
            min=1,
            help="exact: rows per block. Memory is bounded by block × N × 4 bytes of scores plus N × D × 4 bytes of "
            "vectors (100k × 512: 200 MB of vectors) [default: auto = a 256 MiB score block, at most 4096 rows]",
        ),
    ],
    "ef": Annotated[
        int,
        typer.Option(min=1, help="ann: HNSW search beam; more finds more edges, slower"),
    ],
    "nprobe": Annotated[
        int,
        typer.Option(min=1, help="ivf: lists each image's neighbours are searched in; more finds more edges, slower"),
    ],
    "nlist": Annotated[
        int | None,
        typer.Option(min=1, help="ivf: lists (k-means cells) [default: auto = √N]"),
    ],
    "recall_sample": Annotated[
        int,
        typer.Option(
            min=0,
            help="ivf, ann: also search this many random images exactly and report the share of their exact edges "
            "the approximate graph found (summary.json: stats.recall) [default 0: off]",
        ),
    ],
}


def _dedup_request(collection: str | None, out: Path | None, choice: ThresholdChoice, **given: Any) -> DedupRequest:
    """The request, with the defaults that depend on the collection (output folder, legacy ingest report)."""
    if not collection:
        raise LookalikeError("dedup needs --collection NAME (or --undo MANIFEST to put moved files back)")
    report = given.pop("ingest_report") or ingest_report_path(collection)
    key = SigningKey.load(signing_key_path()) if given["move_to"] is not None else None
    limits = GalleryLimits(max_groups=given.pop("gallery_groups"))
    out = out or Path("runs/dedup") / collection
    return DedupRequest(collection, out, choice, ingest_report=report, gallery=limits, signing_key=key, **given)


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


def _new_request(
    new: Path, collection: str | None, out: Path | None, moving: bool, run: RunOptions, **given: Any
) -> NewRequest:
    """The --new check's request; it only reports, so moving is refused before anything is read."""
    if not collection:
        raise LookalikeError(
            "dedup --new needs --collection NAME: the indexed collection to check the new files against"
        )
    if moving:
        raise LookalikeError(
            "--new only reports which new files are duplicates; drop --move-to/--apply (ingest the "
            "folder, then run dedup, to move duplicates)"
        )
    out = out or Path("runs/dedup") / f"{collection}-new"
    return NewRequest(collection, new, out, embed=EmbedConfig(workers=run.workers), progress=run.progress, **given)


def _check_new(request: NewRequest, run: RunOptions) -> None:
    """Run the --new check, print one line per count, exit 3 when some new file could not be checked."""
    torch_device = resolve_device(run.device)
    with run.open_store() as vs:
        check = check_new(vs, request, torch_device, lambda spec: create_encoder(spec, torch_device))
    write_new_outputs(check)
    for line in new_summary_lines(check):
        typer.echo(line)
    typer.echo(f"wrote {check.report_csv.parent}/ (new-duplicates.csv/.parquet, summary.json)")
    exit_partial_if(check.counts()["failed"], "new files could not be checked; each is in new-duplicates.csv with why")


def _counts(moves: tuple[Move, ...] | list[Move]) -> str:
    return " · ".join(f"{s} {n}" for s, n in Counter(m.status for m in moves).items()) or "nothing to move"


@with_run_options("device", *STORE_OPTIONS, "workers", "progress")
@with_option_group("graph", GraphOptions, types=_GRAPH_OPTION_TYPES)
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
    new: Annotated[
        Path | None,
        typer.Option(
            "--new",
            help="Instead: check this folder's images (or a .csv/.parquet manifest) against the indexed collection, "
            "without rebuilding its graph or writing to it: which are exact or near copies of indexed images, or of "
            "each other (new-duplicates.csv in --out [default runs/dedup/<collection>-new]). --method auto searches "
            "the store exactly while that is cheap, else through its HNSW index (--ef)",
        ),
    ] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", "-e", help="Which encoder's vectors")] = None,
    gallery_groups: Annotated[int, typer.Option(min=0, help="Most groups drawn in gallery.html")] = 200,
    *,
    graph: GraphOptions,
    run: RunOptions,
) -> None:
    """Group exact and near-duplicate images of a collection, suggest a keeper per group; never deletes.

    Moves (--move-to … --apply) re-check every file's sha256 at the moment of acting and are recorded in a signed
    manifest that --undo puts back; exit 3 when a move or an undo of some file failed (reasons in the manifest).
    --new FOLDER checks new images against the collection instead (exit 3 when some could not be read).
    """
    with user_errors():
        if undo is not None:
            _undo(undo)
            return
        choice = ThresholdChoice(threshold, precision, pairs)
        if new is not None:
            moving = move_to is not None or apply
            _check_new(
                _new_request(new, collection, out, moving, run, choice=choice, graph=graph, encoder=encoder), run
            )
            return
        request = _dedup_request(
            collection,
            out,
            choice,
            graph=graph,
            ingest_report=ingest_report,
            encoder=encoder,
            move_to=move_to,
            apply=apply,
            gallery_groups=gallery_groups,
            progress=run.progress,
        )
        torch_device = resolve_device(run.device)
        with run.open_store() as vs:
            dedup_run = run_dedup(vs, request, torch_device, lambda spec: create_encoder(spec, torch_device))
    _print_dedup(dedup_run)
    exit_partial_if(
        sum(m.status == "failed" for m in dedup_run.moves),
        "of the moves failed on filesystem errors; each is in the manifest with its reason",
    )
