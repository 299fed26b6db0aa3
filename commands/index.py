"""`encoders`, `ingest`, `query`, `collections`: build and search an index."""

from __future__ import annotations

import csv
import functools
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from commands.common import (
    ALL_RUN_OPTIONS,
    STORE_OPTIONS,
    Collection,
    RunOptions,
    exit_partial_if,
    user_errors,
    with_run_options,
)
from pipeline.core.config import IngestConfig
from pipeline.core.conventions import ingest_report_path, retries_missing
from pipeline.core.device import resolve_device
from pipeline.core.errors import LookalikeError
from pipeline.core.records import IngestSummary
from pipeline.encoders import Encoder, EncoderOptions, create_encoder, list_encoders
from pipeline.index.distributed import RemoteEncoder, ingest_ray
from pipeline.index.ingest import ingest_all
from pipeline.index.ray_session import RayConfig, import_ray
from pipeline.index.sources import ManifestColumns, stream_source
from pipeline.search.fused import query_images
from pipeline.search.fusion import parse_encoder_list
from pipeline.search.query import QueryConfig, QueryResult, query_texts
from pipeline.store import CollectionInfo
from pipeline.store.points import INDEXED_FIELDS


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


@with_run_options(*ALL_RUN_OPTIONS)
def ingest_command(
    source: Annotated[Path, typer.Argument(help="Folder (recursive; sub-folder = label) or .csv/.parquet manifest")],
    collection: Collection,
    encoder: Annotated[
        str, typer.Option("--encoder", "-e", help="Encoder spec, or several comma-separated (one named vector each)")
    ] = "dlib",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass and per upsert")] = 32,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images (sorted by path)")] = None,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Reject images with more pixels (decompression-bomb guard)")
    ] = 89_478_485,
    path_column: Annotated[str, typer.Option(help="Manifest column with image paths")] = "path",
    label_column: Annotated[str, typer.Option(help="Manifest column with labels (optional)")] = "label",
    group_column: Annotated[str, typer.Option(help="Manifest column with groups (optional)")] = "group",
    report: Annotated[
        Path | None, typer.Option(help="CSV of inputs not ingested [default .lookalike/reports/NAME-ingest.csv]")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run on Ray: 'local' (start one here, --workers CPUs), 'auto' (the running cluster) or its address "
            "(ray://host:10001; give --qdrant-url when its nodes are on other machines) [pip install 'lookalike[ray]']",
        ),
    ] = None,
    *,
    run: RunOptions,
) -> None:
    """Embed every image of SOURCE into a collection; re-running adds only what is new.

    Every input is ingested, skipped or failed with a reason (in --report); exit 3 when some failed.
    """
    with user_errors():
        listing = stream_source(source, ManifestColumns(path_column, label_column, group_column), limit)
        torch_device = resolve_device(run.device)
        options = EncoderOptions(no_face=run.no_face_policy())
        specs = parse_encoder_list(encoder)
        if ray is None:
            models = [create_encoder(spec, torch_device, options) for spec in specs]
        else:
            import_ray()  # a missing Ray is said before any store is opened
            remote = [
                RemoteEncoder.from_factory(functools.partial(create_encoder, spec, options=options)) for spec in specs
            ]
        report_path = report or ingest_report_path(collection)
        config = IngestConfig(
            collection,
            batch_size,
            run.workers,
            max_pixels,
            report_path=report_path,
            progress=run.progress,
            retry_missing=retries_missing(run.no_face),
        )
        with run.open_store() as vs:
            if ray is None:
                summaries = ingest_all(listing, models, vs, config, torch_device, point_ids=False)
            else:
                summaries = ingest_ray(listing, remote, vs, config, _ray_config(ray, run), point_ids=False)
        for summary in summaries:
            _print_summary(summary, report_path, len(summaries) > 1)
    exit_partial_if(sum(s.failed for s in summaries), f"of the inputs failed; each is in {report_path} with its reason")


def _ray_config(address: str, run: RunOptions) -> RayConfig:
    """`--ray ADDRESS`: a local Ray gets --workers CPUs (at least one); actors take GPUs unless --device cpu."""
    return RayConfig(address, cpus=max(1, run.workers) if address == "local" else None, use_gpus=run.device != "cpu")


def _parse_where(items: list[str]) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LookalikeError(f"--where {item!r}: expected key=value, e.g. --where label=Aaron_Peirsol")
        text_field = key in INDEXED_FIELDS  # label, group, path, sha256 are stored as text ("3", not 3)
        out[key] = int(value) if value.lstrip("-").isdigit() and not text_field else value
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


@with_run_options("device", *STORE_OPTIONS)
def query_command(
    images: Annotated[list[str] | None, typer.Argument(help="Image files, indexed paths or point ids")] = None,
    *,
    collection: Collection,
    text: Annotated[
        list[str] | None,
        typer.Option("--text", help="Search by text instead of images (CLIP collections; repeatable)"),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Results per query")] = 10,
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
    run: RunOptions,
) -> None:
    """Print the k nearest images of COLLECTION for each query image, or for each --text (CLIP collections: the
    same model's text tower); exit 3 when some queries failed."""
    with user_errors():
        if as_json and as_csv:
            raise LookalikeError("--json and --csv: choose one output format")
        _check_query_kind(images or [], text or [], weights)
        config = QueryConfig(collection, k, _parse_where(where or []), exclude_self)
    with user_errors(), run.open_store() as vs:
        make = functools.partial(_create_on, run.device)
        if text:
            results = query_texts(text, vs, config, encoder, make)
        else:
            results = query_images(images or [], vs, config, encoder, weights, make)
    _emit(results, as_json, as_csv)
    exit_partial_if(sum(1 for r in results if r.error), "of the queries failed (reasons above)")


def _create_on(device: str, spec: str) -> Encoder:
    return create_encoder(spec, resolve_device(device))


def _check_query_kind(images: list[str], texts: list[str], weights: str | None) -> None:
    """Image queries or text queries, one kind per run. Raises LookalikeError otherwise."""
    if images and texts:
        raise LookalikeError("image queries and --text in one run: search by one kind at a time")
    if not images and not texts:
        raise LookalikeError("nothing to search for: give image files, indexed paths or point ids, or --text")
    if texts and weights:
        raise LookalikeError("--weights fuses image queries over several encoders; --text searches one encoder")


@with_run_options(*STORE_OPTIONS)
def collections_command(*, run: RunOptions) -> None:
    """List collections: points, backend (a server's shards × replicas), search index, and encoders [versions]."""
    with user_errors(), run.open_store() as vs:
        for name in vs.list_collections():
            typer.echo(describe_collection(vs.info(name)))


def describe_collection(info: CollectionInfo) -> str:
    """One line: name, points, backend (with a server's shards and replicas) and index, encoders with their
    versions."""
    versions = info.catalog.versions  # {} for collections made before versions were recorded
    encoders = ", ".join(f"{spec} [{versions.get(v, 'version unknown')}]" for v, spec in info.catalog.encoders.items())
    single = any(not s.multivector for s in info.specs.values())
    index = "HNSW" if single and info.indexed_vectors > 0 else "exact scan"
    return f"{info.name:<30} {info.points:>9} points  {info.backend}{_layout(info)}, {index}  {encoders}"


def _layout(info: CollectionInfo) -> str:
    """` (6 shards × 2 replicas, write consistency 2)` as the server reports it; "" where it reports none (the
    embedded store, qdrant-client's local mode)."""
    layout = info.layout
    if layout is None:
        return ""
    parts = [
        f"{n} {word if n == 1 else word + 's'}"
        for n, word in ((layout.shards, "shard"), (layout.replicas, "replica"))
        if n is not None
    ]
    shown = " × ".join(parts)
    if layout.write_consistency is not None:
        shown += f"{', ' if shown else ''}write consistency {layout.write_consistency}"
    return f" ({shown})" if shown else ""
