"""Ingest: accounting for every input, idempotency, resume after an interruption."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from fakes import GreyEncoder, TinyEncoder, smooth_image, write_noise_images
from hostile import shown
from stores import open_test_store

from pipeline.core.config import IngestConfig
from pipeline.core.errors import EncoderVersionError, LookalikeError, StoreError
from pipeline.core.records import ImageRecord, IngestSummary, Rejection
from pipeline.index import ingest as ingest_module
from pipeline.index.ingest import ingest, ingest_all
from pipeline.index.sources import SourceListing, SourceStream, list_source
from pipeline.store import LegacyCollectionWarning, VectorSpec, VectorStore

CPU = torch.device("cpu")


def _config(tmp_path: Path, batch_size: int = 4, workers: int = 0) -> IngestConfig:
    report = tmp_path / "report.csv"
    return IngestConfig("c", batch_size=batch_size, workers=workers, report_path=report, progress=False)


def test_mixed_folder_every_input_accounted_for(
    mixed_image_folder: Any, tiny_encoder: TinyEncoder, vector_store: VectorStore, tmp_path: Path
) -> None:
    listing = list_source(mixed_image_folder.root)
    summary = ingest(listing, tiny_encoder, vector_store, _config(tmp_path), CPU)
    assert summary.ingested == mixed_image_folder.n_good
    assert summary.duplicate_content == mixed_image_folder.n_duplicates
    assert summary.failed == mixed_image_folder.n_broken
    assert summary.skipped == len(mixed_image_folder.ignored)
    assert summary.seen == mixed_image_folder.n_images + len(mixed_image_folder.ignored)
    assert vector_store.count("c") == mixed_image_folder.n_good
    report = pl.read_csv(tmp_path / "report.csv")
    failed = report.filter(pl.col("status") == "failed")
    assert sorted(failed["path"].to_list()) == sorted(str(p) for p in mixed_image_folder.broken)
    assert all(reason for reason in failed["reason"].to_list())
    too_large = failed.filter(pl.col("path").str.ends_with("too_large.png"))["reason"][0]
    assert "too large" in too_large


def test_second_run_adds_nothing(mixed_image_folder: Any, vector_store: VectorStore, tmp_path: Path) -> None:
    listing = list_source(mixed_image_folder.root)
    ingest(listing, TinyEncoder(), vector_store, _config(tmp_path), CPU)
    again = TinyEncoder()
    summary = ingest(listing, again, vector_store, _config(tmp_path), CPU)
    assert summary.ingested == 0 and again.embedded == 0
    assert summary.already_present == mixed_image_folder.n_good
    assert vector_store.count("c") == mixed_image_folder.n_good


def test_payload_has_path_hash_label_and_size(tmp_path: Path, vector_store: VectorStore) -> None:
    [path] = write_noise_images(tmp_path / "imgs", 1, size=(40, 30))
    ingest(list_source(tmp_path / "imgs"), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    [(_, vector, payload)] = list(vector_store.scroll("c", "tiny-thumb8"))
    assert vector is not None and vector.shape == (192,)
    assert payload["path"] == str(path.resolve()) and payload["label"] == "class_0"
    assert (payload["width"], payload["height"]) == (40, 30) and len(payload["sha256"]) == 64


def test_resume_after_interruption_embeds_only_the_rest(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 10)
    listing = list_source(tmp_path / "imgs")
    with pytest.raises(KeyboardInterrupt):
        ingest(listing, TinyEncoder(fail_on_call=3), vector_store, _config(tmp_path, batch_size=4), CPU)
    assert vector_store.count("c") == 8  # two batches of 4 were upserted before the interruption
    resumed = TinyEncoder()
    summary = ingest(listing, resumed, vector_store, _config(tmp_path, batch_size=4), CPU)
    assert resumed.embedded == 2 and summary.ingested == 2 and summary.already_present == 8
    assert vector_store.count("c") == 10


def test_no_face_is_recorded_once_and_not_retried(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 6)
    listing = list_source(tmp_path / "imgs")
    summary = ingest(listing, TinyEncoder(dark_below=2.0), vector_store, _config(tmp_path), CPU)
    assert summary.no_face == 6 and summary.ingested == 0
    retry = TinyEncoder(dark_below=2.0)
    summary = ingest(listing, retry, vector_store, _config(tmp_path), CPU)
    assert retry.embedded == 0 and summary.already_present == 6


def test_worker_processes_give_the_same_vectors(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 9)
    listing = list_source(tmp_path / "imgs")
    stores = [open_test_store("edge", tmp_path / f"store{i}") for i in range(2)]
    for store, workers in zip(stores, (0, 2), strict=True):
        ingest(listing, TinyEncoder(), store, _config(tmp_path, batch_size=4, workers=workers), CPU)
    a, b = ({pid: vec.tolist() for pid, vec, _ in s.scroll("c", "tiny-thumb8")} for s in stores)  # type: ignore[union-attr]
    assert a == b and len(a) == 9


def test_retry_missing_embeds_earlier_no_face_images_again(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 4)
    listing = list_source(tmp_path / "imgs")
    ingest(listing, TinyEncoder(dark_below=2.0), vector_store, _config(tmp_path), CPU)
    fallback = TinyEncoder()
    config = IngestConfig("c", batch_size=4, workers=0, progress=False, retry_missing=True)
    summary = ingest(listing, fallback, vector_store, config, CPU)
    assert fallback.embedded == 4 and summary.ingested == 4
    assert all(vec is not None for _, vec, _ in vector_store.scroll("c", "tiny-thumb8"))


def test_labels_from_a_later_source_are_added_to_stored_points(tmp_path: Path, vector_store: VectorStore) -> None:
    paths = write_noise_images(tmp_path / "imgs", 3)
    ingest(
        SourceListing(tuple(ImageRecord(str(p)) for p in paths)), TinyEncoder(), vector_store, _config(tmp_path), CPU
    )
    assert all("label" not in payload for _, _, payload in vector_store.scroll("c"))
    again = TinyEncoder()
    ingest(list_source(tmp_path / "imgs"), again, vector_store, _config(tmp_path), CPU)
    assert again.embedded == 0
    labels = sorted(payload["label"] for _, _, payload in vector_store.scroll("c"))
    assert labels == ["class_0", "class_1", "class_2"]


def _levels(folder: Path, levels: dict[str, tuple[int, int]]) -> None:
    """One smooth PNG per name, its pixels drawn from the given [low, high) range (dark, bright, middling)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, level in levels.items():
        smooth_image(rng, level=level).save(folder / f"{name}.png")


def _by_path(store: VectorStore, vector: str) -> dict[str, tuple[bool, dict]]:
    return {Path(p["path"]).stem: (v is not None, p) for _, v, p in store.scroll("c", vector)}


def test_two_encoders_fill_one_collection_with_both_vectors(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 5)
    listing = list_source(tmp_path / "imgs")
    summaries = ingest_all(listing, [TinyEncoder(), GreyEncoder()], vector_store, _config(tmp_path), CPU)
    assert [s.encoder for s in summaries] == ["tiny:thumb8", "grey:4"]
    assert [s.ingested for s in summaries] == [5, 5] and vector_store.count("c") == 5
    assert vector_store.encoder_specs("c") == {"tiny-thumb8": "tiny:thumb8", "grey-4": "grey:4"}
    assert all(has for has, _ in _by_path(vector_store, "tiny-thumb8").values())
    assert all(has for has, _ in _by_path(vector_store, "grey-4").values())
    again = [TinyEncoder(), GreyEncoder()]
    summaries = ingest_all(listing, again, vector_store, _config(tmp_path), CPU)
    assert [e.embedded for e in again] == [0, 0] and [s.already_present for s in summaries] == [5, 5]


def test_a_later_pass_keeps_the_vectors_of_an_earlier_one(tmp_path: Path, vector_store: VectorStore) -> None:
    """Regression: Qdrant's upsert replaces whole points, so a second encoder's pass used to drop the first's."""
    write_noise_images(tmp_path / "imgs", 4)
    listing = list_source(tmp_path / "imgs")
    ingest_all(listing, [TinyEncoder(), GreyEncoder()], vector_store, _config(tmp_path), CPU)
    write_noise_images(tmp_path / "more", 3, seed=9)
    ingest(list_source(tmp_path / "more"), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    grey = GreyEncoder()
    ingest(list_source(tmp_path / "more"), grey, vector_store, _config(tmp_path), CPU)
    assert grey.embedded == 3 and vector_store.count("c") == 7
    for vector in ("tiny-thumb8", "grey-4"):
        assert all(has for has, _ in _by_path(vector_store, vector).values())


def test_no_face_records_merge_across_encoders(tmp_path: Path, vector_store: VectorStore) -> None:
    _levels(tmp_path / "imgs", {"dark": (0, 60), "bright": (200, 256), "mid": (90, 170)})
    listing = list_source(tmp_path / "imgs")
    encoders = [TinyEncoder(dark_below=0.3), GreyEncoder(bright_above=0.7)]
    summaries = ingest_all(listing, encoders, vector_store, _config(tmp_path), CPU)
    assert [s.no_face for s in summaries] == [1, 1]
    tiny, grey = _by_path(vector_store, "tiny-thumb8"), _by_path(vector_store, "grey-4")
    assert (tiny["dark"][0], grey["dark"][0], tiny["bright"][0], grey["bright"][0]) == (False, True, True, False)
    assert tiny["dark"][1]["missing_vectors"] == ["tiny-thumb8"] and grey["bright"][1]["missing_vectors"] == ["grey-4"]
    assert tiny["mid"][1].get("missing_vectors", []) == []
    report = pl.read_csv(tmp_path / "report.csv")
    assert sorted(report["encoder"].to_list()) == ["grey:4", "tiny:thumb8"]
    fallback = TinyEncoder()
    config = IngestConfig("c", batch_size=4, workers=0, progress=False, retry_missing=True)
    ingest_all(listing, [fallback, GreyEncoder(bright_above=0.7)], vector_store, config, CPU)
    assert fallback.embedded == 1  # only the image it had no vector for
    after = _by_path(vector_store, "tiny-thumb8")["dark"]
    assert after[0] and after[1]["missing_vectors"] == [] and _by_path(vector_store, "grey-4")["dark"][0]


def test_a_third_encoder_or_a_repeated_one_is_refused(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 2)
    listing = list_source(tmp_path / "imgs")
    ingest_all(listing, [TinyEncoder(), GreyEncoder()], vector_store, _config(tmp_path), CPU)

    class Other(GreyEncoder):
        name = "other:1"

    with pytest.raises(StoreError, match=r"made with encoder\(s\) grey-4, tiny-thumb8, not other-1"):
        ingest(listing, Other(), vector_store, _config(tmp_path), CPU)
    with pytest.raises(LookalikeError, match="distinct encoders"):
        ingest_all(listing, [TinyEncoder(), TinyEncoder()], vector_store, _config(tmp_path), CPU)


class _Retrained(TinyEncoder):
    version = "tiny:2"  # same name, another embedding space (e.g. weights retrained into the same folder)


def test_collection_records_each_encoder_version_and_refuses_a_changed_one(
    tmp_path: Path, vector_store: VectorStore
) -> None:
    write_noise_images(tmp_path / "imgs", 3)
    listing = list_source(tmp_path / "imgs")
    ingest_all(listing, [TinyEncoder(), GreyEncoder()], vector_store, _config(tmp_path), CPU)
    assert vector_store.encoder_versions("c") == {"tiny-thumb8": "tiny:1", "grey-4": "grey:1"}
    retrained = _Retrained()
    with pytest.raises(EncoderVersionError, match=r"'c' holds tiny:thumb8 vectors from encoder version tiny:1.*tiny:2"):
        ingest(listing, retrained, vector_store, _config(tmp_path), CPU)
    assert retrained.embedded == 0  # refused before anything was embedded or written


def test_collection_without_recorded_versions_still_ingests(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 3)
    vector_store.ensure_collection("c", [VectorSpec("tiny-thumb8", 192, "cosine")], {"tiny-thumb8": "tiny:thumb8"})
    with pytest.warns(LegacyCollectionWarning):
        summary = ingest(list_source(tmp_path / "imgs"), _Retrained(), vector_store, _config(tmp_path), CPU)
    assert summary.ingested == 3


def _two_folders_sharing_a_file(root: Path) -> tuple[Path, Path]:
    """Folders a/ and b/, each with its own images; b/shared_copy.png has the bytes of a/'s first image."""
    first = write_noise_images(root / "a", 3)[0]
    write_noise_images(root / "b", 2, seed=7)
    copy = root / "b" / "shared_copy.png"
    copy.write_bytes(first.read_bytes())
    return first, copy


def _payload_of(store: VectorStore, path: Path) -> dict:
    [payload] = [p for _, _, p in store.scroll("c") if p["path"] == str(path.resolve())]
    return payload


def test_byte_identical_files_of_separate_runs_are_recorded_on_one_point(
    tmp_path: Path, vector_store: VectorStore
) -> None:
    """Regression: a copy ingested in a later run was only "already_present", so dedup's exact tier (then read
    from the last run's report) never saw it."""
    first, copy = _two_folders_sharing_a_file(tmp_path)
    ingest(list_source(tmp_path / "a"), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert "duplicate_paths" not in _payload_of(vector_store, first)
    summary = ingest(list_source(tmp_path / "b"), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert summary.already_present == 1 and vector_store.count("c") == 5
    assert _payload_of(vector_store, first)["duplicate_paths"] == [str(copy.resolve())]


def test_recording_duplicate_paths_is_idempotent(tmp_path: Path, vector_store: VectorStore) -> None:
    first, copy = _two_folders_sharing_a_file(tmp_path)
    twin = tmp_path / "a" / "twin.png"
    twin.write_bytes(first.read_bytes())  # a second copy, in the same run as the original
    for folder in ("a", "b", "a", "b"):
        ingest(list_source(tmp_path / folder), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    ingest(list_source(tmp_path), TinyEncoder(), vector_store, _config(tmp_path), CPU)  # both, via another root
    payload = _payload_of(vector_store, first)
    assert payload["path"] == str(first.resolve())
    assert payload["duplicate_paths"] == [str(twin.resolve()), str(copy.resolve())]
    report = pl.read_csv(tmp_path / "report.csv")  # the in-run copies are still reported, as before
    assert sorted(report.filter(pl.col("status") == "duplicate_content")["path"].to_list()) == sorted(
        [str(copy), str(twin)]
    )


def test_a_later_encoder_pass_from_a_copy_keeps_the_stored_path(tmp_path: Path, vector_store: VectorStore) -> None:
    """The point's `path` stays the first file ingested, even when another encoder embeds the content from a copy."""
    write_noise_images(tmp_path / "seed", 1, seed=3)  # makes the collection with both vectors
    ingest_all(list_source(tmp_path / "seed"), [TinyEncoder(), GreyEncoder()], vector_store, _config(tmp_path), CPU)
    first, copy = _two_folders_sharing_a_file(tmp_path)
    ingest(list_source(tmp_path / "a"), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    grey = GreyEncoder()
    ingest(list_source(tmp_path / "b"), grey, vector_store, _config(tmp_path), CPU)
    assert grey.embedded == 3  # b/'s two own images and the shared one, from its copy
    payload = _payload_of(vector_store, first)
    assert payload["duplicate_paths"] == [str(copy.resolve())] and payload["missing_vectors"] == []


# Issue 16: every input accounted for; nothing ends in a traceback.


def test_listing_failures_and_skips_are_counted_and_reported(tmp_path: Path, vector_store: VectorStore) -> None:
    # A folder that could not be listed was neither counted nor reported (exit 0).
    [path] = write_noise_images(tmp_path / "imgs", 1)
    locked = Rejection(str(tmp_path / "locked"), "cannot list folder: Permission denied")
    loop = Rejection(str(tmp_path / "up"), "folder already listed as x (a symlink loop, or a second way in)")
    listing = SourceListing((ImageRecord(str(path)),), skipped=(loop,), failed=(locked,))
    summary = ingest(listing, TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert (summary.seen, summary.ingested, summary.failed, summary.skipped) == (3, 1, 1, 1)
    report = pl.read_csv(tmp_path / "report.csv").select("path", "status", "reason").rows()
    assert sorted(report) == sorted([(locked.path, "failed", locked.reason), (loop.path, "skipped", loop.reason)])


def test_non_regular_files_fail_without_being_opened(tmp_path: Path, vector_store: VectorStore) -> None:
    # A FIFO was reported as an "empty file (0 bytes)"; a folder or a symlink loop as merely "unreadable".
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    records = tuple(ImageRecord(str(tmp_path / name)) for name in ("fifo.jpg", "folder.jpg", "loop.jpg"))
    summary = ingest(SourceListing(records), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert [(Path(o.path).name, o.status, o.reason) for o in summary.problems] == [
        ("fifo.jpg", "failed", "not a regular file: a FIFO (named pipe)"),
        ("folder.jpg", "failed", "not a regular file: a folder"),
        ("loop.jpg", "failed", "symbolic link loop (too many levels of symbolic links)"),
    ]


def _odd_names(folder: Path) -> dict[str, Path]:
    """Good images under hostile names, by the path text a store payload should hold."""
    names = [os.fsdecode(b"bad\xff name.png"), "new\nline.png", 'tab\tquote"comma, .png', "ünïcødé 画像.png"]
    paths = {}
    for i, name in enumerate(names):
        path = folder / name
        write_noise_images(tmp := folder / f"_{i}", 1, seed=i)
        (tmp / "class_0" / "img_000.png").rename(path)
        paths[shown(str(path.resolve()))] = path
    return paths


def test_odd_and_non_utf8_names_are_stored_and_found_again(tmp_path: Path, vector_store: VectorStore) -> None:
    # The embedded store raised TypeError (surrogates not allowed) on a name that is not UTF-8: exit 1, no report.
    folder = tmp_path / "odd"
    folder.mkdir()
    paths = _odd_names(folder)
    listing = SourceListing(tuple(ImageRecord(str(p)) for p in paths.values()))
    summary = ingest(listing, TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert summary.ingested == 4 and summary.failed == 0
    stored = {p["path"]: p for _, _, p in vector_store.scroll("c")}
    assert sorted(stored) == sorted(paths)
    assert f"{folder.resolve()}/bad\\xff name.png" in stored
    again = ingest(listing, TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert again.already_present == 4
    assert all("duplicate_paths" not in p for _, _, p in vector_store.scroll("c"))  # not a copy of itself


def test_report_round_trips_hostile_names(tmp_path: Path, vector_store: VectorStore) -> None:
    # Writing a name that is not UTF-8 raised UnicodeEncodeError: exit 1 and no report.
    names = [os.fsdecode(b"bad\xfe.jpg"), "new\nline.jpg", "cr\rlf\r\n.jpg", 'tab\tquote"comma, .jpg', "壊れた.jpg"]
    paths = [tmp_path / name for name in names]
    for i, path in enumerate(paths):
        path.write_bytes(b"not an image %d" % i)
    listing = SourceListing(tuple(ImageRecord(str(p)) for p in paths))
    summary = ingest(listing, TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert summary.failed == len(names)
    texts = sorted(shown(str(p)) for p in paths)
    assert f"{tmp_path}/bad\\xfe.jpg" in texts
    assert sorted(pl.read_csv(tmp_path / "report.csv")["path"].to_list()) == texts
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as fh:
        assert sorted(row["path"] for row in csv.DictReader(fh)) == texts


# Issue 18: ingest reads its source in rounds, so memory does not grow with the number of files.


def test_each_round_is_stored_before_the_next_is_read(
    tmp_path: Path, vector_store: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole listing was hashed before the first image was embedded: every path and hash held at once.
    monkeypatch.setattr(ingest_module, "ROUND_FILES", 4)
    paths = write_noise_images(tmp_path / "imgs", 12)
    stored_when_read: list[int] = []

    def records() -> Iterator[ImageRecord]:
        for path in paths:
            stored_when_read.append(vector_store.count("c"))
            yield ImageRecord(str(path))

    summary = ingest(SourceStream(records(), len(paths)), TinyEncoder(), vector_store, _config(tmp_path), CPU)
    assert summary.ingested == 12
    assert stored_when_read == [0] * 4 + [4] * 4 + [8] * 4


def _outcomes(summaries: tuple[IngestSummary, ...], root: Path) -> list[object]:
    def rel(path: str) -> str:
        return str(Path(path).relative_to(root))

    counts = [(s.seen, s.ingested, s.already_present, s.duplicate_content, s.failed, s.skipped) for s in summaries]
    problems = [
        [(rel(o.path), o.status, o.reason.replace(str(root), ""), o.encoder) for o in s.problems] for s in summaries
    ]
    ids = [sorted((rel(p), pid) for p, pid in s.point_ids.items()) for s in summaries]
    return [counts, problems, ids]


@pytest.mark.parametrize("round_files", [1, 2, 5])
def test_rounds_give_what_one_round_gives(
    mixed_image_folder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, round_files: int
) -> None:
    # Duplicates, failures and skips found in a later round than their first copy must be counted, reported and
    # stored as when every file is in one round; a second run adds already-present points and new copies.
    root = mixed_image_folder.root
    extra = root / "zz"
    extra.mkdir()
    (extra / "cat_copy.jpg").write_bytes((root / "cats" / "cat_1.png").read_bytes())
    results = []
    for rounds in (10_000, round_files):
        monkeypatch.setattr(ingest_module, "ROUND_FILES", rounds)
        store = open_test_store("edge", tmp_path / f"store{rounds}")
        config = IngestConfig("c", batch_size=2, workers=0, report_path=tmp_path / f"{rounds}.csv", progress=False)
        encoders = [TinyEncoder(), GreyEncoder()]
        first = ingest_all(list_source(root / "cats"), encoders, store, config, CPU)
        second = ingest_all(list_source(root), encoders, store, config, CPU)
        payloads = sorted((pid, sorted(p.items())) for pid, _, p in store.scroll("c"))
        store.close()
        report = (tmp_path / f"{rounds}.csv").read_text()
        results.append((_outcomes(first, root), _outcomes(second, root), payloads, report))
    assert results[1] == results[0]
    assert results[0][1][0][0] == (14, 4, 3, 2, 4, 1)  # cats/ already present, cats/cat_0_copy and zz/ copies
    assert any(dict(p).get("duplicate_paths") for _, p in results[0][2])


def test_point_ids_can_be_left_out(tmp_path: Path, vector_store: VectorStore) -> None:
    write_noise_images(tmp_path / "imgs", 3)
    listing = list_source(tmp_path / "imgs")
    [summary] = ingest_all(listing, [TinyEncoder()], vector_store, _config(tmp_path), CPU, point_ids=False)
    assert summary.ingested == 3 and summary.point_ids == {}
