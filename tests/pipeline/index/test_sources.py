"""Ingest sources: folders and CSV/Parquet manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from fakes import write_noise_images
from hostile import run_with_permissions

from pipeline.core.errors import SourceError
from pipeline.core.records import Rejection
from pipeline.index import sources
from pipeline.index.sources import ManifestColumns, list_source


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
    assert listing.skipped == (Rejection(str(tmp_path / "readme.md"), "not an image file name"),)


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


# Issue 16: every entry of a source is accounted for.

_LIST_IN_CHILD = """
import json, sys
from pipeline.index.sources import list_source
listing = list_source(sys.argv[1])
failed = [[r.path, r.reason] for r in listing.failed]
print(json.dumps({"records": [r.path for r in listing.records], "failed": failed}))
"""


def test_unreadable_subfolder_is_a_failed_entry(tmp_path: Path) -> None:
    # os.walk ignored the folder it could not list: its 63 images were neither counted nor reported.
    write_noise_images(tmp_path / "locked", 63)
    write_noise_images(tmp_path / "open", 2)
    (tmp_path / "locked").chmod(0)
    child = run_with_permissions(_LIST_IN_CHILD, str(tmp_path))
    (tmp_path / "locked").chmod(0o755)
    assert child.returncode == 0, child.stderr[-2000:]
    listed = json.loads(child.stdout)
    assert listed["failed"] == [[str(tmp_path / "locked"), "cannot list folder: Permission denied"]]
    assert len(listed["records"]) == 2


def test_directory_symlink_loops_end_and_are_skipped_with_a_reason(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "a", 2)
    (tmp_path / "a" / "up").symlink_to("..")
    (tmp_path / "a" / "self").symlink_to(".")
    listing = list_source(tmp_path)
    assert len(listing.records) == 2
    assert [(Path(r.path).name, r.reason) for r in listing.skipped] == [
        ("self", f"folder already listed as {tmp_path / 'a'} (a symlink loop, or a second way in)"),
        ("up", f"folder already listed as {tmp_path} (a symlink loop, or a second way in)"),
    ]


def test_symlinked_folders_are_followed_and_listed_once_under_the_real_path(tmp_path: Path) -> None:
    # Before, os.walk passed over every symlinked folder in silence, wherever it pointed.
    write_noise_images(tmp_path / "elsewhere", 1)
    root = tmp_path / "root"
    write_noise_images(root / "real", 1)
    (root / "alias").symlink_to("real")  # sorts before "real": the real path must still win
    (root / "outside").symlink_to(tmp_path / "elsewhere")
    listing = list_source(root)
    assert [(Path(r.path).relative_to(root).as_posix(), r.label) for r in listing.records] == [
        ("outside/class_0/img_000.png", "outside/class_0"),
        ("real/class_0/img_000.png", "real/class_0"),
    ]
    assert [(r.path, r.reason) for r in listing.skipped] == [
        (str(root / "alias"), f"folder already listed as {root / 'real'} (a symlink loop, or a second way in)")
    ]


def test_odd_files_are_listed_for_opening_and_an_image_named_folder_is_a_folder(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "dir.jpg", 1)
    (tmp_path / "broken.jpg").symlink_to("missing.jpg")
    (tmp_path / "loop_a.jpg").symlink_to("loop_b.jpg")
    (tmp_path / "loop_b.jpg").symlink_to("loop_a.jpg")
    (tmp_path / "loop").symlink_to("loop")  # a loop without an image name: skipped by name
    os.mkfifo(tmp_path / "fifo.jpg")
    listing = list_source(tmp_path)
    names = [Path(r.path).relative_to(tmp_path).as_posix() for r in listing.records]
    assert names == ["broken.jpg", "dir.jpg/class_0/img_000.png", "fifo.jpg", "loop_a.jpg", "loop_b.jpg"]
    assert [(Path(r.path).name, r.reason) for r in listing.skipped] == [("loop", "not an image file name")]
    assert listing.failed == ()


def test_non_utf8_folder_label_is_escaped(tmp_path: Path) -> None:
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    write_noise_images(folder, 1)
    [record] = list_source(tmp_path).records
    assert record.path == str(folder / "class_0" / "img_000.png")  # the real name, to open the file with
    assert record.label == "caf\\xe9/class_0"


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("plain/ünïcødé 画像.jpg", "plain/ünïcødé 画像.jpg"),
        ('new\nline\t"quoted", comma.jpg', 'new\nline\t"quoted", comma.jpg'),
        (os.fsdecode(b"bad\xff\xfe.jpg"), "bad\\xff\\xfe.jpg"),
        (os.fsdecode("é".encode() + b"\xe9"), "é\\xe9"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ],
)
def test_display_path_is_valid_utf8_and_leaves_valid_names_alone(path: str, shown: str) -> None:
    assert sources.display_path(path) == shown
    assert sources.display_path(shown) == shown  # valid text: left alone


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_rows_without_a_path_fail_with_their_row_number(tmp_path: Path, suffix: str) -> None:
    # They were dropped without a word.
    write_noise_images(tmp_path / "imgs", 2)
    paths = ["imgs/class_1/img_001.png", None, "", "  ", "imgs/class_0/img_000.png"]
    frame = pl.DataFrame({"path": paths, "label": ["b", "x", "y", "z", "a"]})
    manifest = tmp_path / f"m{suffix}"
    frame.write_csv(manifest) if suffix == ".csv" else frame.write_parquet(manifest)
    listing = list_source(manifest)
    assert [r.label for r in listing.records] == ["a", "b"]
    assert [(r.path, r.reason) for r in listing.failed] == [
        (str(manifest), f"manifest row {n}: empty 'path' value, no image to read") for n in (2, 3, 4)
    ]


def test_limit_keeps_failures_and_skips(tmp_path: Path) -> None:
    write_noise_images(tmp_path, 4)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "up").symlink_to(".")
    listing = list_source(tmp_path, limit=1)
    assert len(listing.records) == 1 and [Path(r.path).name for r in listing.skipped] == ["notes.txt", "up"]


def test_an_unreadable_root_is_a_source_error(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "root", 2)
    (tmp_path / "root").chmod(0)
    code = "import sys\nfrom pipeline.index.sources import list_source\nlist_source(sys.argv[1])"
    child = run_with_permissions(code, str(tmp_path / "root"))
    (tmp_path / "root").chmod(0o755)
    assert child.returncode == 1
    assert f"SourceError: {tmp_path / 'root'}: cannot list folder: Permission denied" in child.stderr


# Issue 18: a folder is streamed, so ingest memory does not grow with the number of files.


def test_stream_yields_the_first_record_before_reading_the_other_folders_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # list_source held every path of the tree (and sorted them all) before the first file was hashed.
    for i in range(20):
        write_noise_images(tmp_path / f"d{i:02d}", 2, seed=i)
    calls: list[Path] = []
    entries = sources._entries

    def counted(folder: Path) -> list[os.DirEntry[str]]:
        calls.append(folder)
        return entries(folder)

    monkeypatch.setattr(sources, "_entries", counted)
    stream = sources.stream_source(tmp_path)
    planned = len(calls)  # root, d00..d19, and their class_* folders: the tree of folders
    assert stream.total == 40 and planned == 1 + 20 + 40
    first = next(stream.records)
    assert Path(first.path) == tmp_path / "d00" / "class_0" / "img_000.png"
    assert len(calls) - planned == 3  # root, d00, d00/class_0: only the folders on the way to the first file
    assert len([first, *stream.records]) == 40 and len(calls) == 2 * planned


def test_stream_order_is_the_order_of_sorting_every_path(tmp_path: Path) -> None:
    # Depth first with each folder's names sorted gives Path order, not text order: "a/x" sorts before "a b/x"
    # (parts "a" < "a b") though "a b/x" < "a/x" as text (" " < "/").
    names = ["a/x.png", "a b/x.png", "a.png", "a-b.jpg", "a/b/c.png", "a/b.png", "B/z.png", "é.jpg", "a0/y.gif"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    streamed = [r.path for r in sources.stream_source(tmp_path).records]
    assert streamed == [str(p) for p in sorted(tmp_path / name for name in names)]
    assert streamed != sorted(streamed)  # the case above: text order would differ
    assert [r.path for r in list_source(tmp_path).records] == streamed


def test_stream_limit_and_manifest(tmp_path: Path) -> None:
    write_noise_images(tmp_path / "imgs", 6)
    stream = sources.stream_source(tmp_path / "imgs", limit=4)
    assert stream.total == 4 and len(list(stream.records)) == 4
    manifest = tmp_path / "m.csv"
    pl.DataFrame({"path": ["imgs/class_1/img_001.png", None, "imgs/class_0/img_000.png"]}).write_csv(manifest)
    stream = sources.stream_source(manifest)
    assert stream.total == 2 and [r.reason for r in stream.failed] == [
        "manifest row 2: empty 'path' value, no image to read"
    ]
    assert [Path(r.path).name for r in stream.records] == ["img_000.png", "img_001.png"]


def test_a_folder_that_cannot_be_listed_when_its_files_are_read_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan listed it; by the time its files are reached it is gone: a failure, and the walk goes on.
    write_noise_images(tmp_path / "a", 1)
    write_noise_images(tmp_path / "b", 1)
    stream = sources.stream_source(tmp_path)
    entries = sources._entries

    def gone(folder: Path) -> list[os.DirEntry[str]]:
        if folder == tmp_path / "a":
            raise FileNotFoundError(2, "No such file or directory")
        return entries(folder)

    monkeypatch.setattr(sources, "_entries", gone)
    assert [Path(r.path).relative_to(tmp_path).as_posix() for r in stream.records] == ["b/class_0/img_000.png"]
    assert stream.failed == [Rejection(str(tmp_path / "a"), "cannot list folder: No such file or directory")]
