"""`map`: draw a collection's embedding space as map.png, an interactive map.html and map.csv."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from commands.common import STORE_OPTIONS, Collection, RunOptions, user_errors, with_run_options
from pipeline.maps.build import DEFAULT_SAMPLE, MapConfig, build_map
from pipeline.maps.layout import Method
from pipeline.maps.page import PageConfig
from pipeline.maps.write import write_map


@with_run_options(*STORE_OPTIONS, "progress")
def map_command(
    collection: Collection,
    encoder: Annotated[
        str | None, typer.Option("--encoder", "-e", help="Which encoder's vectors (default: the collection's only one)")
    ] = None,
    method: Annotated[
        Method, typer.Option(help="Layout: auto = 2-d vectors as they are, else umap; none = as they are (2-d only)")
    ] = Method.AUTO,
    color_by: Annotated[str, typer.Option(help="Payload field whose values colour the points")] = "label",
    sample: Annotated[
        int, typer.Option(min=1, help="Most points drawn; beyond it a seeded random sample of this many")
    ] = DEFAULT_SAMPLE,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sample and the layout")] = 0,
    thumbnails: Annotated[
        int, typer.Option(min=0, help="Points whose thumbnail is embedded in map.html (64 px JPEG each)")
    ] = PageConfig.max_thumbnails,
    out: Annotated[
        Path | None, typer.Option(help="Folder for map.png, map.html and map.csv [default runs/maps/COLLECTION]")
    ] = None,
    *,
    run: RunOptions,
) -> None:
    """Lay out COLLECTION's stored vectors in 2-D (UMAP, t-SNE, PCA, or as they are) and draw them: map.png coloured
    by --color-by, map.html (self-contained: hover shows thumbnail and path, click opens the image), map.csv."""
    started = time.perf_counter()
    with user_errors():
        config = MapConfig(method, color_by, sample, seed, run.progress)
        with run.open_store() as vs:
            emap = build_map(vs, collection, encoder, config)
        out_dir = out or Path("runs/maps") / collection
        files = write_map(emap, out_dir, PageConfig(max_thumbnails=thumbnails, progress=run.progress))
    typer.echo(
        f"map of {collection} · {emap.encoder} · {emap.method.value}: {emap.describe()}, {len(emap.classes)} "
        f"{color_by} classes (read + layout {emap.seconds:.1f} s, total {time.perf_counter() - started:.1f} s)\n"
        f"  wrote {files.png}, {files.html.name} and {files.csv.name}"
    )
