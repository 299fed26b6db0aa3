"""Copy-detection benchmark: generation writes the files and ground truth it promises; scoring runs end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from pipeline.bench.copies import CopyBenchConfig, make_copy_benchmark
from pipeline.core.errors import LookalikeError
from pipeline.core.transforms import TRANSFORM_NAMES, apply_transform
from pipeline.encoders import create_encoder
from pipeline.evaluation.protocols.copies import eval_copies
from pipeline.evaluation.protocols.copy_set import load_copy_set
from pipeline.evaluation.setup import EvalSetup
from pipeline.index.collection import IndexedCollection
from pipeline.store import VectorStore


def _smooth_images(folder: Path, n: int, seed: int = 0) -> None:
    """Distinct smooth RGB images (upsampled 6×6 noise), so perceptual hashes tell them apart."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        small.resize((96, 80), Image.Resampling.BICUBIC).save(folder / f"src{i:02d}.png")


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    _smooth_images(tmp_path / "src", 12)
    config = CopyBenchConfig(originals=3, copies=11, distractors=5, negatives=2, seed=1)
    summary = make_copy_benchmark(tmp_path / "src", tmp_path / "bench", config)
    assert (summary.references, summary.copy_queries, summary.negative_queries) == (8, 33, 2)
    return tmp_path / "bench"


def test_generation_writes_files_and_ground_truth(bench: Path) -> None:
    truth = pl.read_csv(bench / "ground_truth.csv").fill_null("")
    assert truth.columns == ["query", "reference", "transform"] and truth.height == 35
    assert all((bench / q).is_file() for q in truth["query"])
    assert all((bench / r).is_file() for r in truth["reference"] if r)
    assert len(list((bench / "references").iterdir())) == 8
    copies = truth.filter(pl.col("reference") != "")
    assert copies.height == 33 and copies["reference"].n_unique() == 3
    kinds = ["combo" if "+" in t else t for t in copies["transform"]]
    assert set(kinds) == set(TRANSFORM_NAMES) and kinds.count("crop") == 6  # 11 copies: crop comes round twice
    pairs = pl.read_csv(bench / "pairs.csv")
    assert pairs.height == 66 and pairs["same"].sum() == 33
    assert (pairs.filter(pl.col("same") == 0)["left"] != pairs.filter(pl.col("same") == 0)["right"]).all()


def test_generation_is_seeded(tmp_path: Path) -> None:
    _smooth_images(tmp_path / "src", 6)
    config = CopyBenchConfig(originals=2, copies=3, distractors=1, negatives=1, seed=7)
    make_copy_benchmark(tmp_path / "src", tmp_path / "a", config)
    make_copy_benchmark(tmp_path / "src", tmp_path / "b", config)
    for path in (tmp_path / "a").rglob("*.*"):
        if path.name != "benchmark.json":
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_too_few_images_and_non_empty_out_are_refused(tmp_path: Path) -> None:
    _smooth_images(tmp_path / "src", 3)
    with pytest.raises(LookalikeError, match="ask for fewer originals, negatives or distractors"):
        make_copy_benchmark(tmp_path / "src", tmp_path / "out", CopyBenchConfig(originals=2, distractors=5))
    with pytest.raises(LookalikeError, match="not empty"):
        make_copy_benchmark(tmp_path / "src", tmp_path / "src", CopyBenchConfig(originals=1, distractors=0))


def test_every_transform_returns_an_image() -> None:
    image = Image.new("RGB", (40, 30), (120, 30, 200))
    for name in TRANSFORM_NAMES:
        out, applied = apply_transform(name, image, np.random.default_rng(0))
        assert out.mode in ("RGB", "L") and min(out.size) >= 8 and applied.startswith(name if name != "combo" else "")


def test_eval_copies_scores_phash(bench: Path, vector_store: VectorStore, tmp_path: Path) -> None:
    encoder = create_encoder("phash", torch.device("cpu"))
    index = IndexedCollection(
        vector_store, "copies", (encoder,), torch.device("cpu"), workers=0, progress=False, report_dir=tmp_path / "rep"
    )
    setup = EvalSetup(index)
    output = eval_copies(setup, load_copy_set(bench), k=5)
    metrics = output.result.metrics
    assert output.result.counts["copies"] == 33 and output.result.counts["queries"] == 35
    assert 0.0 <= (metrics["micro_ap"] or 0) <= 1.0 and 0.0 <= (metrics["recall_at_p90"] or 0) <= 1.0
    assert metrics["recall_at_1_jpeg"] == 1.0 and metrics["recall_at_1_greyscale"] == 1.0  # phash ignores these
    assert len(load_copy_set(bench).references) == 8
