"""`dedup --new`: new files checked against an indexed phash collection (both store backends), every file accounted
for, the store left as it was (the within-new rule on hand-made vectors: test_new_near)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from pipeline.core.config import IngestConfig
from pipeline.core.errors import LookalikeError
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.incremental import NewCheck, check_new
from pipeline.dedup.new_output import new_summary_lines, write_new_outputs
from pipeline.dedup.new_records import NewRequest
from pipeline.dedup.run import ThresholdChoice
from pipeline.encoders.base import Encoder
from pipeline.encoders.phash import PHashEncoder
from pipeline.index.embed import EmbedConfig
from pipeline.index.ingest import ingest
from pipeline.index.sources import list_source
from pipeline.store import VectorStore, point_id_for

CPU = torch.device("cpu")


def _smooth(rng: np.random.Generator, path: Path, size: tuple[int, int] = (128, 96)) -> Path:
    """A distinct image phash tells apart from the others: 8×8 random colours, upsampled smoothly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC).save(path)
    return path


def _shrunk(src: Path, dst: Path) -> Path:
    """A half-size JPEG of `src`: other bytes, the same phash but for a bit or two."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).resize((64, 48)).save(dst, quality=85)
    return dst


def _indexed(store: VectorStore, root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = [_smooth(rng, root / f"img{i}.png") for i in range(6)]
    ingest(list_source(root), PHashEncoder(), store, IngestConfig("c", workers=0, progress=False), CPU)
    return paths


def _new_folder(root: Path, indexed: list[Path]) -> dict[str, Path]:
    """One file of each kind: exact and near copies of indexed images, a near and a byte copy of a new image, a new
    image alone, a broken and an empty file, and a name that is not an image."""
    rng = np.random.default_rng(1)
    root.mkdir()
    files = {"exact": root / "copy_of_img1.png", "near": _shrunk(indexed[0], root / "img0_small.jpg")}
    shutil.copyfile(indexed[1], files["exact"])
    files["fresh"] = _smooth(rng, root / "fresh.png")
    files["fresh_near"] = _shrunk(files["fresh"], root / "sub" / "fresh_small.jpg")
    files["fresh_copy"] = root / "sub" / "fresh_copy.png"
    shutil.copyfile(files["fresh"], files["fresh_copy"])
    files["alone"] = _smooth(rng, root / "alone.png")
    files["broken"] = root / "broken.jpg"
    files["broken"].write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    files["empty"] = root / "empty.png"
    files["empty"].touch()
    files["notes"] = root / "notes.txt"
    files["notes"].write_text("not an image")
    return files


def _snapshot(store: VectorStore) -> tuple[int, list[tuple[str, list[float], dict]]]:
    points = store.scroll("c", vector="phash-8")
    rows = sorted((pid, vec.tolist() if vec is not None else [], payload) for pid, vec, payload in points)
    return store.count("c"), rows


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Built:
    """make_encoder that counts how often it is called."""

    def __init__(self) -> None:
        self.specs: list[str] = []

    def __call__(self, spec: str) -> Encoder:
        self.specs.append(spec)
        return PHashEncoder()


def _check(store: VectorStore, source: Path, out: Path, **options: object) -> tuple[NewCheck, _Built]:
    built = _Built()
    request = NewRequest("c", source, out, ThresholdChoice(0.9), embed=EmbedConfig(workers=0), progress=False)
    request = dataclasses.replace(request, **options)
    return check_new(store, request, CPU, built), built


@pytest.mark.parametrize("method", [DedupMethod.ANN, DedupMethod.EXACT])
def test_every_new_file_gets_its_status_and_the_store_is_unchanged(
    vector_store: VectorStore, tmp_path: Path, method: DedupMethod
) -> None:
    indexed = _indexed(vector_store, tmp_path / "indexed")
    files = _new_folder(tmp_path / "new", indexed)
    before = _snapshot(vector_store)
    check, built = _check(vector_store, tmp_path / "new", tmp_path / "out", graph=GraphOptions(k=3, method=method))
    assert _snapshot(vector_store) == before  # nothing written: same points, vectors and payloads

    got = {Path(f.path).name: f for f in check.files}
    assert len(check.files) == len(files) and set(got) == {p.name for p in files.values()}  # each entry, once
    exact = got["copy_of_img1.png"]
    assert (exact.status, exact.match_path, exact.score) == ("exact", str(indexed[1].resolve()), 1.0)
    assert exact.match_point_id == point_id_for(_sha(indexed[1]))
    near = got["img0_small.jpg"]
    assert (near.status, near.match_path) == ("near", str(indexed[0].resolve()))
    assert near.match_point_id == point_id_for(_sha(indexed[0])) and near.score is not None and near.score >= 0.9
    # within the new files: the smaller near copy and the byte copy point at the full-size original, left unflagged
    for name in ("fresh_small.jpg", "fresh_copy.png"):
        assert (got[name].status, got[name].match_path) == ("within_new", str(files["fresh"])), name
    assert got["fresh_copy.png"].score == 1.0 and got["fresh_copy.png"].match_point_id == ""
    assert got["fresh.png"].status == got["alone.png"].status == "unique"
    assert got["broken.jpg"].status == "failed" and got["broken.jpg"].reason
    assert (got["empty.png"].status, got["empty.png"].reason) == ("failed", "empty file (0 bytes)")
    assert got["notes.txt"].status == "skipped"
    assert check.counts() == {
        "exact": 1,
        "near": 1,
        "within_new": 2,
        "unique": 2,
        "indexed": 0,
        "skipped": 1,
        "failed": 2,
    }
    assert built.specs == ["phash:8"]  # the collection's own encoder, built once


def test_outputs_hold_one_row_per_file_and_the_summary_counts(vector_store: VectorStore, tmp_path: Path) -> None:
    indexed = _indexed(vector_store, tmp_path / "indexed")
    _new_folder(tmp_path / "new", indexed)
    check, _ = _check(vector_store, tmp_path / "new", tmp_path / "out")
    assert not check.report_csv.exists()  # the check only reads; the outputs are written on request
    write_new_outputs(check)
    frame = pl.read_csv(check.report_csv)
    assert frame.columns == ["new_path", "status", "match_path", "match_point_id", "score", "reason"]
    parquet = pl.read_parquet(check.report_parquet)
    assert parquet.select("new_path", "status").equals(frame.select("new_path", "status"))
    assert frame.height == len(check.files) == 9
    summary = json.loads(check.summary.read_text())
    assert summary["counts"] == check.counts() and summary["threshold"] == 0.9 and summary["encoder"] == "phash:8"
    assert set(summary["seconds"]) == {"hashing", "embedding", "search", "total"}
    lines = new_summary_lines(check)
    assert lines[0].startswith("9 new files against c (phash:8, threshold 0.9, exact search)")
    assert [line.split()[0] for line in lines[1:]] == ["exact", "near", "within_new", "unique", "skipped", "failed"]


def test_the_collection_own_folder_is_indexed_and_needs_no_encoder(vector_store: VectorStore, tmp_path: Path) -> None:
    indexed = _indexed(vector_store, tmp_path / "indexed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(indexed[2], elsewhere / "img2_again.png")
    check, built = _check(vector_store, tmp_path / "indexed", tmp_path / "out")
    assert [f.status for f in check.files] == ["indexed"] * 6
    assert all(f.match_path == "" and f.match_point_id for f in check.files)
    check, built = _check(vector_store, elsewhere, tmp_path / "out")
    [copy] = check.files
    assert (copy.status, copy.match_path) == ("exact", str(indexed[2].resolve()))
    assert built.specs == []  # every file decided by its hash: no encoder built


def test_refusals_are_one_line(vector_store: VectorStore, tmp_path: Path) -> None:
    _indexed(vector_store, tmp_path / "indexed")
    with pytest.raises(LookalikeError, match="no such file or folder"):
        _check(vector_store, tmp_path / "missing", tmp_path / "out")
    with pytest.raises(LookalikeError, match="no collection 'nope'"):
        _check(vector_store, tmp_path / "indexed", tmp_path / "out", collection="nope")
    with pytest.raises(LookalikeError, match="recall sample") as caught:
        NewRequest("c", tmp_path, tmp_path, ThresholdChoice(0.9), graph=GraphOptions(recall_sample=5))
    assert caught.value.setting == "recall_sample"  # the CLI names --recall-sample
