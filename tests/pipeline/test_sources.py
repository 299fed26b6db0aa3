"""Ingest sources: folders and CSV/Parquet manifests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fakes import write_noise_images

from pipeline.errors import SourceError
from pipeline.sources import ManifestColumns, list_source


def test_folder_is_recursive_sorted_and_labelled_by_subfolder(tmp_path: Path) -> None:
    paths = write_noise_images(tmp_path, 5)
    (tmp_path / "top.png").write_bytes(paths[0].read_bytes())
    (tmp_path / "readme.md").write_text("x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.png").write_bytes(b"")
    listing = list_source(tmp_path)
    assert [r.path for r in listing.records] == sorted(r.path for r in listing.records)
    assert len(listing.records) == 6
    labels = {Path(r.path).name: r.label for r in listing.records}
    assert labels["img_004.png"] == "class_1" and labels["top.png"] is None
    assert listing.skipped == (str(tmp_path / "readme.md"),)


def test_limit_keeps_the_first_n(tmp_path: Path) -> None:
    write_noise_images(tmp_path, 6)
    assert len(list_source(tmp_path, limit=4).records) == 4


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_resolves_relative_paths_and_reads_labels(tmp_path: Path, suffix: str) -> None:
    write_noise_images(tmp_path / "imgs", 2)
    frame = pl.DataFrame({"file": ["imgs/class_1/img_001.png", "imgs/class_0/img_000.png"], "who": ["b", "a"]})
    manifest = tmp_path / f"m{suffix}"
    frame.write_csv(manifest) if suffix == ".csv" else frame.write_parquet(manifest)
    listing = list_source(manifest, ManifestColumns(path="file", label="who"))
    assert [(Path(r.path).name, r.label, r.group) for r in listing.records] == [
        ("img_000.png", "a", None),
        ("img_001.png", "b", None),
    ]
    assert Path(listing.records[0].path).is_absolute()


def test_manifest_without_path_column_names_the_columns(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,label\nx.png,a\n")
    with pytest.raises(SourceError, match=r"no 'path' column \(have: file, label\)"):
        list_source(manifest)


def test_missing_and_unsupported_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        list_source(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(SourceError, match=r"not a folder or a \.csv/\.parquet manifest"):
        list_source(tmp_path / "x.txt")
