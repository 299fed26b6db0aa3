"""`lookalike map` end to end on an embedded store: the files it writes, the sample it states, one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from map_collection import make_collection
from stores import open_test_store
from typer.testing import CliRunner

from cli import app
from pipeline.store import Point, VectorSpec, point_id_for

runner = CliRunner()


@pytest.fixture(scope="module")
def store_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """An embedded store holding `syn` (24 points, 8-d, labels a/b/c), `two` (2-d), `few` (2 points), `multi`; made
    once, as the command only reads it."""
    tmp_path = tmp_path_factory.mktemp("map_store")
    store = open_test_store("edge", tmp_path / "qdrant")
    make_collection(store, tmp_path / "imgs")
    make_collection(store, tmp_path / "two", n=9, dim=2, collection="two")
    make_collection(store, tmp_path / "few", n=2, collection="few")
    store.ensure_collection("multi", [VectorSpec("m", 3, "dot", multivector=True)], {"m": "late:3"})
    store.upsert("multi", [Point(point_id_for("p"), {"m": np.eye(3, dtype=np.float32)}, {"path": "/p.png"})])
    store.close()
    return ["--store", str(tmp_path / "qdrant"), "--no-progress"]


def test_map_writes_png_html_csv_and_says_what_it_drew(store_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["map", "-c", "syn", "--method", "pca", "--out", str(out), *store_args])
    assert result.exit_code == 0, result.output
    assert "map of syn · fake:v · pca: 24 points, 3 label classes" in result.output
    assert (out / "map.png").read_bytes().startswith(b"\x89PNG")
    assert "24 points" in (out / "map.html").read_text()
    assert len(list(csv.DictReader((out / "map.csv").open()))) == 24


def test_map_states_its_seeded_sample(store_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["map", "-c", "syn", "--method", "tsne", "--sample", "8", "--seed", "4", "--out", str(out), *store_args]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "8 of 24 points (random sample, seed 4)" in result.output
    assert "8 of 24 points (random sample, seed 4)" in (out / "map.html").read_text()
    rows = list(csv.DictReader((out / "map.csv").open()))
    assert len(rows) == 8
    again = runner.invoke(app, [*args[: -len(store_args) - 2], "--out", str(tmp_path / "again"), *store_args])
    assert [r["point_id"] for r in csv.DictReader((tmp_path / "again" / "map.csv").open())] == [
        r["point_id"] for r in rows
    ], again.output


def test_a_2d_collection_is_drawn_as_it_is_by_default(store_args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", "-c", "two", "--out", str(tmp_path / "o"), *store_args])
    assert result.exit_code == 0, result.output
    assert "· none: 9 points" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "nosuch"], "no collection 'nosuch'"),
        (["-c", "syn", "-e", "clip:ViT-B-32"], "has no vectors from encoder 'clip:ViT-B-32'"),
        (["-c", "multi"], "as multivectors"),
        (["-c", "few", "--method", "pca"], "has 2 points to draw; a pca map needs at least 3"),
        (["-c", "syn", "--method", "none"], "needs 2-d vectors; these are 8-d"),
        (["-c", "syn", "--method", "isomap"], "--method"),
    ],
)
def test_refusals_are_one_line_exit_2(args: list[str], message: str, store_args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", *args, "--out", str(tmp_path / "o"), *store_args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # numba compiles umap-learn's kernels on first use: ~15 s of CPU per process
def test_umap_is_the_default_for_vectors_over_2d(store_args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", "-c", "syn", "--out", str(tmp_path / "o"), *store_args])
    assert result.exit_code == 0, result.output
    assert "· umap: 24 points" in result.output and (tmp_path / "o" / "map.html").is_file()
