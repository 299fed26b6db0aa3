"""Ingest: accounting for every input, idempotency, resume after an interruption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from fakes import TinyEncoder, write_noise_images

from pipeline.config import IngestConfig
from pipeline.ingest import ingest
from pipeline.sources import list_source
from pipeline.store import VectorStore

CPU = torch.device("cpu")


def _config(tmp_path: Path, batch_size: int = 4, workers: int = 0) -> IngestConfig:
    report = tmp_path / "report.csv"
    return IngestConfig("c", batch_size=batch_size, workers=workers, report_path=report, progress=False)


def test_mixed_folder_every_input_accounted_for(
    mixed_image_folder: Any, tiny_encoder: TinyEncoder, memory_store: VectorStore, tmp_path: Path
) -> None:
    listing = list_source(mixed_image_folder.root)
    summary = ingest(listing, tiny_encoder, memory_store, _config(tmp_path), CPU)
    assert summary.ingested == mixed_image_folder.n_good
    assert summary.duplicate_content == mixed_image_folder.n_duplicates
    assert summary.failed == mixed_image_folder.n_broken
    assert summary.skipped == len(mixed_image_folder.ignored)
    assert summary.seen == mixed_image_folder.n_images + len(mixed_image_folder.ignored)
    assert memory_store.count("c") == mixed_image_folder.n_good
    report = pl.read_csv(tmp_path / "report.csv")
    failed = report.filter(pl.col("status") == "failed")
    assert sorted(failed["path"].to_list()) == sorted(str(p) for p in mixed_image_folder.broken)
    assert all(reason for reason in failed["reason"].to_list())
    too_large = failed.filter(pl.col("path").str.ends_with("too_large.png"))["reason"][0]
    assert "too large" in too_large


def test_second_run_adds_nothing(mixed_image_folder: Any, memory_store: VectorStore, tmp_path: Path) -> None:
    listing = list_source(mixed_image_folder.root)
    ingest(listing, TinyEncoder(), memory_store, _config(tmp_path), CPU)
    again = TinyEncoder()
    summary = ingest(listing, again, memory_store, _config(tmp_path), CPU)
    assert summary.ingested == 0 and again.embedded == 0
    assert summary.already_present == mixed_image_folder.n_good
    assert memory_store.count("c") == mixed_image_folder.n_good


def test_payload_has_path_hash_label_and_size(tmp_path: Path, memory_store: VectorStore) -> None:
    [path] = write_noise_images(tmp_path / "imgs", 1, size=(40, 30))
    ingest(list_source(tmp_path / "imgs"), TinyEncoder(), memory_store, _config(tmp_path), CPU)
    [(_, vector, payload)] = list(memory_store.scroll("c", "tiny-thumb8"))
    assert vector is not None and vector.shape == (192,)
    assert payload["path"] == str(path.resolve()) and payload["label"] == "class_0"
    assert (payload["width"], payload["height"]) == (40, 30) and len(payload["sha256"]) == 64


def test_resume_after_interruption_embeds_only_the_rest(tmp_path: Path, memory_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 10)
    listing = list_source(tmp_path / "imgs")
    with pytest.raises(KeyboardInterrupt):
        ingest(listing, TinyEncoder(fail_on_call=3), memory_store, _config(tmp_path, batch_size=4), CPU)
    assert memory_store.count("c") == 8  # two batches of 4 were upserted before the interruption
    resumed = TinyEncoder()
    summary = ingest(listing, resumed, memory_store, _config(tmp_path, batch_size=4), CPU)
    assert resumed.embedded == 2 and summary.ingested == 2 and summary.already_present == 8
    assert memory_store.count("c") == 10


def test_no_face_is_recorded_once_and_not_retried(tmp_path: Path, memory_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 6)
    listing = list_source(tmp_path / "imgs")
    summary = ingest(listing, TinyEncoder(dark_below=2.0), memory_store, _config(tmp_path), CPU)
    assert summary.no_face == 6 and summary.ingested == 0
    retry = TinyEncoder(dark_below=2.0)
    summary = ingest(listing, retry, memory_store, _config(tmp_path), CPU)
    assert retry.embedded == 0 and summary.already_present == 6


def test_worker_processes_give_the_same_vectors(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    write_noise_images(tmp_path / "imgs", 9)
    listing = list_source(tmp_path / "imgs")
    stores = [VectorStore(QdrantClient(":memory:")) for _ in range(2)]
    for store, workers in zip(stores, (0, 2), strict=True):
        ingest(listing, TinyEncoder(), store, _config(tmp_path, batch_size=4, workers=workers), CPU)
    a, b = ({pid: vec.tolist() for pid, vec, _ in s.scroll("c", "tiny-thumb8")} for s in stores)  # type: ignore[union-attr]
    assert a == b and len(a) == 9


def test_retry_missing_embeds_earlier_no_face_images_again(tmp_path: Path, memory_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 4)
    listing = list_source(tmp_path / "imgs")
    ingest(listing, TinyEncoder(dark_below=2.0), memory_store, _config(tmp_path), CPU)
    fallback = TinyEncoder()
    config = IngestConfig("c", batch_size=4, workers=0, progress=False, retry_missing=True)
    summary = ingest(listing, fallback, memory_store, config, CPU)
    assert fallback.embedded == 4 and summary.ingested == 4
    assert all(vec is not None for _, vec, _ in memory_store.scroll("c", "tiny-thumb8"))


def test_labels_from_a_later_source_are_added_to_stored_points(tmp_path: Path, memory_store: VectorStore) -> None:
    from pipeline.records import ImageRecord
    from pipeline.sources import SourceListing

    paths = write_noise_images(tmp_path / "imgs", 3)
    ingest(
        SourceListing(tuple(ImageRecord(str(p)) for p in paths)), TinyEncoder(), memory_store, _config(tmp_path), CPU
    )
    assert all("label" not in payload for _, _, payload in memory_store.scroll("c"))
    again = TinyEncoder()
    ingest(list_source(tmp_path / "imgs"), again, memory_store, _config(tmp_path), CPU)
    assert again.embedded == 0
    labels = sorted(payload["label"] for _, _, payload in memory_store.scroll("c"))
    assert labels == ["class_0", "class_1", "class_2"]
