"""`query` over several named vectors of one collection, fused by point id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import GreyEncoder, TinyEncoder, noisy_copy, smooth_image

from pipeline.core.config import IngestConfig
from pipeline.core.errors import LookalikeError
from pipeline.encoders.base import Encoder
from pipeline.index.ingest import ingest_all
from pipeline.index.sources import list_source
from pipeline.search.fused import collection_normalisation, collection_vectors, query_images
from pipeline.search.query import QueryConfig
from pipeline.store import VectorStore

BOTH = "tiny:thumb8,grey:4"


def _make(bright_above: float = 2.0) -> dict[str, Encoder]:
    return {"tiny:thumb8": TinyEncoder(), "grey:4": GreyEncoder(bright_above)}


@pytest.fixture
def gallery(tmp_path: Path, vector_store: VectorStore) -> tuple[list[Path], list[Path]]:
    """10 smooth images (the last two bright: no 'grey' vector) in one collection, and a noisy copy of each."""
    rng = np.random.default_rng(4)
    originals, copies = [], []
    for i in range(10):
        image = smooth_image(rng, level=(200, 256) if i >= 8 else (0, 200))
        originals.append(tmp_path / "g" / f"img_{i}.png")
        originals[-1].parent.mkdir(exist_ok=True)
        image.save(originals[-1])
        copies.append(tmp_path / f"q_{i}.png")
        noisy_copy(image, rng, 6).save(copies[-1])
    encoders = list(_make(bright_above=0.75).values())
    config = IngestConfig("g", batch_size=4, workers=0, progress=False)
    ingest_all(list_source(tmp_path / "g"), encoders, vector_store, config, torch.device("cpu"))
    return originals, copies


def test_fused_query_finds_each_original_even_without_one_encoders_vector(
    gallery: tuple[list[Path], list[Path]], vector_store: VectorStore
) -> None:
    originals, copies = gallery
    make = _make(bright_above=0.75)
    results = query_images([str(c) for c in copies], vector_store, QueryConfig("g", k=3), BOTH, None, make.__getitem__)
    assert [Path(r.hits[0].path).name for r in results] == [p.name for p in originals]
    assert all(len(r.hits) == 3 and r.hits[0].score >= r.hits[1].score for r in results)
    weighted = query_images([str(copies[0])], vector_store, QueryConfig("g", k=10), BOTH, "1,3", make.__getitem__)
    assert len(weighted[0].hits) == 10  # every point is reachable, also the two without a 'grey' vector


def test_fused_query_of_indexed_points_needs_no_encoder(
    gallery: tuple[list[Path], list[Path]], vector_store: VectorStore
) -> None:
    originals, _ = gallery
    config = QueryConfig("g", k=2, exclude_self=True)
    [result] = query_images([str(originals[0])], vector_store, config, BOTH, None, lambda s: pytest.fail(s))
    assert result.error == "" and Path(result.hits[0].path).name != originals[0].name


def test_fused_query_errors_only_when_no_encoder_resolves(
    gallery: tuple[list[Path], list[Path]], vector_store: VectorStore, tmp_path: Path
) -> None:
    make = _make()
    [missing] = query_images(["/no/such.png"], vector_store, QueryConfig("g"), BOTH, None, make.__getitem__)
    assert missing.hits == () and "tiny:thumb8: not a file" in missing.error and "grey:4: not a file" in missing.error
    with pytest.raises(LookalikeError, match="no vectors from encoder 'other:1'"):
        query_images(["x"], vector_store, QueryConfig("g"), "tiny:thumb8,other:1", None, make.__getitem__)
    with pytest.raises(LookalikeError, match="weights '1': 1 weights for 2 encoders"):
        query_images(["x"], vector_store, QueryConfig("g"), BOTH, "1", make.__getitem__)


def test_collection_normalisation_uses_pairs_of_stored_points(
    gallery: tuple[list[Path], list[Path]], vector_store: VectorStore
) -> None:
    vectors = collection_vectors(vector_store, "g", ["tiny:thumb8", "grey:4"])
    mean, std = collection_normalisation(vector_store, "g", [v.spec for v in vectors])
    assert all(-1.0 <= m <= 1.0 for m in mean) and all(0.0 < s <= 1.0 for s in std)
    assert mean[0] < 0.9  # self-pairs (similarity 1) are left out
