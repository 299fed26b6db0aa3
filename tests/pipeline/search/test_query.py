"""Query/rank on a synthetic set whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TinyEncoder, write_noise_images
from PIL import Image

from pipeline.core.config import IngestConfig
from pipeline.core.errors import EncoderVersionError, LookalikeError
from pipeline.index.ingest import encoder_vector_spec, ingest
from pipeline.index.sources import list_source
from pipeline.search.query import QueryConfig, collection_vector, resolve_queries, run_queries
from pipeline.store import VectorStore


@pytest.fixture
def indexed(tmp_path: Path, vector_store: VectorStore) -> tuple[list[Path], VectorStore]:
    paths = write_noise_images(tmp_path / "gallery", 12, seed=3)
    config = IngestConfig("g", batch_size=5, workers=0, progress=False)
    ingest(list_source(tmp_path / "gallery"), TinyEncoder(), vector_store, config, torch.device("cpu"))
    return paths, vector_store


def _noisy_copy(path: Path, out: Path, seed: int) -> Path:
    pixels = np.asarray(Image.open(path), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-20, 21, pixels.shape)
    Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)).save(out)
    return out


def test_noisy_copy_finds_its_original_at_rank_1(indexed: tuple[list[Path], VectorStore], tmp_path: Path) -> None:
    paths, store = indexed
    spec = encoder_vector_spec(TinyEncoder())
    queries = [str(_noisy_copy(p, tmp_path / f"q{i}.png", i)) for i, p in enumerate(paths)]
    built: list[TinyEncoder] = []
    resolved = resolve_queries(queries, store, "g", spec, lambda: built.append(TinyEncoder()) or built[-1])
    assert len(built) == 1  # the factory is called once, only because the copies are not indexed
    results = run_queries(resolved, store, spec, QueryConfig("g", k=3))
    assert [Path(r.hits[0].path).name for r in results] == [p.name for p in paths]
    assert all(r.hits[0].score > r.hits[1].score for r in results)


class _Retrained(TinyEncoder):
    version = "tiny:2"


def test_query_embedded_by_another_encoder_version_is_refused(
    indexed: tuple[list[Path], VectorStore], tmp_path: Path
) -> None:
    paths, store = indexed
    spec = encoder_vector_spec(TinyEncoder())
    resolved = resolve_queries([str(paths[0])], store, "g", spec, _Retrained)  # indexed: stored vector, no check
    assert resolved[0].point_id is not None
    new_image = str(_noisy_copy(paths[0], tmp_path / "new.png", 0))
    with pytest.raises(EncoderVersionError, match=r"'g' holds tiny:thumb8 vectors from encoder version tiny:1"):
        resolve_queries([new_image], store, "g", spec, _Retrained)


def test_indexed_image_path_and_id_use_the_stored_vector(indexed: tuple[list[Path], VectorStore]) -> None:
    paths, store = indexed
    spec, encoder_spec = collection_vector(store, "g", None)
    assert encoder_spec == "tiny:thumb8"
    resolved = resolve_queries([str(paths[4])], store, "g", spec, lambda: pytest.fail("should not embed"))
    point_id = resolved[0].point_id
    assert point_id is not None
    by_id = resolve_queries([point_id], store, "g", spec, lambda: pytest.fail("should not embed"))
    [with_self, by_id_result] = run_queries([*resolved, *by_id], store, spec, QueryConfig("g", k=2))
    assert with_self.hits[0].point_id == point_id and with_self.hits[0].score == pytest.approx(1.0)
    assert by_id_result.hits[0].point_id == point_id
    [without_self] = run_queries(resolved, store, spec, QueryConfig("g", k=2, exclude_self=True))
    assert point_id not in {h.point_id for h in without_self.hits}


def test_where_filter_restricts_labels(indexed: tuple[list[Path], VectorStore]) -> None:
    paths, store = indexed
    spec, _ = collection_vector(store, "g", None)
    resolved = resolve_queries([str(paths[0])], store, "g", spec, TinyEncoder)
    [result] = run_queries(resolved, store, spec, QueryConfig("g", k=10, where={"label": "class_2"}))
    assert len(result.hits) == 4 and {h.label for h in result.hits} == {"class_2"}


def test_unknown_query_is_an_error_not_a_crash(indexed: tuple[list[Path], VectorStore], tmp_path: Path) -> None:
    _, store = indexed
    spec, _ = collection_vector(store, "g", None)
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    resolved = resolve_queries(["/no/such.png", str(bad)], store, "g", spec, TinyEncoder)
    results = run_queries(resolved, store, spec, QueryConfig("g"))
    assert "not a file" in results[0].error and "not an image" in results[1].error
    assert results[0].hits == () and results[1].hits == ()


def test_wrong_encoder_for_collection(indexed: tuple[list[Path], VectorStore]) -> None:
    _, store = indexed
    with pytest.raises(LookalikeError, match="no vectors from encoder 'dlib'"):
        collection_vector(store, "g", "dlib")
