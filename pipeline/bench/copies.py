"""Copy-detection benchmark generation: transformed copies of originals, with ground truth, plus distractors.

Layout written under OUT (paths in the CSVs are relative to OUT):

    references/   the originals and the distractor originals (bytes copied unchanged)
    queries/      copies (`<ref>_<j>_<transform>.jpg`) and negatives (copies of images that are not references)
    ground_truth.csv   query, reference, transform   (reference empty for a negative query)
    pairs.csv          left, right, same   (each copy with its original, and with one other reference)
    benchmark.json     settings and counts
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from pipeline.core.errors import ImageDecodeError, LookalikeError
from pipeline.core.images import load_rgb
from pipeline.core.transforms import TRANSFORM_NAMES, apply_transform
from pipeline.index.sources import list_source


@dataclass(frozen=True)
class CopyBenchConfig:
    """How many of each kind to make.

    Attributes:
        originals: source images that get copies (and are references).
        copies: transformed copies per original (cycling through the ten transforms).
        distractors: further references with no copies.
        negatives: queries made from source images that are not references (no true match).
        seed: picks images and transform parameters.
        quality: JPEG quality the queries are saved at.
    """

    originals: int = 100
    copies: int = 10
    distractors: int = 900
    negatives: int = 100
    seed: int = 0
    quality: int = 92

    def __post_init__(self) -> None:
        if min(self.originals, self.copies) < 1 or min(self.distractors, self.negatives) < 0:
            raise LookalikeError(f"copy benchmark: need originals ≥ 1, copies ≥ 1, others ≥ 0; got {self}")


@dataclass(frozen=True)
class CopyBenchSummary:
    """What `make_copy_benchmark` wrote."""

    out: Path
    references: int
    copy_queries: int
    negative_queries: int
    undecodable_skipped: int


@dataclass(frozen=True)
class _Query:
    path: str  # relative to OUT
    reference: str  # relative to OUT; "" for a negative
    transform: str


def _pick(paths: Sequence[str], config: CopyBenchConfig) -> tuple[list[tuple[str, Image.Image]], list[str], int]:
    """Seeded choice of (originals + negatives) decodable images, then distractor paths; and how many failed."""
    order = np.random.default_rng(config.seed).permutation(len(paths))
    wanted = config.originals + config.negatives
    decoded: list[tuple[str, Image.Image]] = []
    failed, position = 0, 0
    while len(decoded) < wanted and position < len(order):
        path = paths[order[position]]
        position += 1
        try:
            decoded.append((path, load_rgb(path)))
        except ImageDecodeError:
            failed += 1
    distractors = [paths[i] for i in order[position : position + config.distractors]]
    if len(decoded) < wanted or len(distractors) < config.distractors:
        raise LookalikeError(
            f"copy benchmark: need {wanted} decodable images + {config.distractors} distractors, but the source has "
            f"{len(paths)} images ({failed} undecodable); ask for fewer originals, negatives or distractors"
        )
    return decoded, distractors, failed


def _copy_reference(src: str, out: Path, key: str) -> str:
    relative = f"references/{key}{Path(src).suffix.lower()}"
    shutil.copyfile(src, out / relative)
    return relative


def _save_query(image: Image.Image, out: Path, stem: str, quality: int) -> str:
    relative = f"queries/{stem}.jpg"
    image.convert("RGB").save(out / relative, "JPEG", quality=quality)
    return relative


def _make_copies(
    originals: Sequence[tuple[str, Image.Image]], out: Path, config: CopyBenchConfig
) -> tuple[list[str], list[_Query]]:
    references: list[str] = []
    queries: list[_Query] = []
    for i, (src, image) in enumerate(originals):
        key = f"o{i:05d}"
        reference = _copy_reference(src, out, key)
        references.append(reference)
        for j in range(config.copies):
            name = TRANSFORM_NAMES[j % len(TRANSFORM_NAMES)]
            copy, applied = apply_transform(name, image, np.random.default_rng([config.seed, i, j]))
            queries.append(_Query(_save_query(copy, out, f"{key}_{j:02d}_{name}", config.quality), reference, applied))
    return references, queries


def _make_negatives(images: Sequence[tuple[str, Image.Image]], out: Path, config: CopyBenchConfig) -> list[_Query]:
    queries = []
    for i, (_, image) in enumerate(images):
        name = TRANSFORM_NAMES[i % len(TRANSFORM_NAMES)]
        copy, applied = apply_transform(name, image, np.random.default_rng([config.seed, 10**6 + i]))
        queries.append(_Query(_save_query(copy, out, f"neg{i:05d}_{name}", config.quality), "", applied))
    return queries


def _labelled_pairs(queries: Sequence[_Query], references: Sequence[str], seed: int) -> pl.DataFrame:
    """Each copy with its original (same) and with one other reference drawn at random (different)."""
    rng = np.random.default_rng([seed, 2])
    rows: list[tuple[str, str, int]] = []
    for q in queries:
        if q.reference and len(references) > 1:
            other = q.reference
            while other == q.reference:
                other = references[int(rng.integers(len(references)))]
            rows += [(q.path, q.reference, 1), (q.path, other, 0)]
    return pl.DataFrame(rows, schema={"left": pl.String, "right": pl.String, "same": pl.Int64}, orient="row")


def make_copy_benchmark(source: Path, out: Path, config: CopyBenchConfig) -> CopyBenchSummary:
    """Write a copy-detection benchmark built from the images of `source` (a folder or manifest) into `out`.

    Raises:
        LookalikeError: `out` is not empty, or the source has too few images for the requested counts.
    """
    if out.exists() and any(out.iterdir()):
        raise LookalikeError(
            f"benchmark folder {out} is not empty; choose a new folder for the benchmark", setting="out"
        )
    paths = [r.path for r in list_source(source).records]
    decoded, distractor_paths, failed = _pick(paths, config)
    for sub in ("references", "queries"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    references, queries = _make_copies(decoded[: config.originals], out, config)
    references += [_copy_reference(p, out, f"d{i:05d}") for i, p in enumerate(distractor_paths)]
    negatives = _make_negatives(decoded[config.originals :], out, config)
    truth = pl.DataFrame([asdict(q) for q in (*queries, *negatives)]).rename({"path": "query"})
    truth.write_csv(out / "ground_truth.csv")
    _labelled_pairs(queries, references, config.seed).write_csv(out / "pairs.csv")
    summary = CopyBenchSummary(out, len(references), len(queries), len(negatives), failed)
    meta = {"source": str(source.resolve()), "config": asdict(config), **asdict(summary), "out": str(out)}
    (out / "benchmark.json").write_text(json.dumps(meta, indent=2) + "\n")
    return summary
