"""`lookalike dedup`, `bench copies` and `eval copies` end to end with CliRunner, phash and an embedded store."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakes import write_planted_folder
from PIL import Image
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


_planted_folder = write_planted_folder


def _ingest(tmp_path: Path, store: list[str]) -> None:
    args = ["ingest", str(tmp_path / "photos"), "-c", "photos", "-e", "phash", "--workers", "0", "--no-progress"]
    result = runner.invoke(app, [*args, "--report", str(tmp_path / "ingest.csv"), *store])
    assert result.exit_code == 0, result.output
    assert "duplicate content 1" in result.output


def _dedup(tmp_path: Path, store: list[str], *extra: str) -> pl.DataFrame:
    args = ["dedup", "-c", "photos", "--out", str(tmp_path / "out"), "--ingest-report", str(tmp_path / "ingest.csv")]
    result = runner.invoke(app, [*args, "--no-progress", "--device", "cpu", *extra, *store])
    assert result.exit_code == 0, result.output
    return pl.read_csv(tmp_path / "out" / "groups.csv")


def test_dedup_finds_planted_duplicates_and_moves_round_trip(tmp_path: Path) -> None:
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    groups = _dedup(tmp_path, store, "--threshold", "0.9", "--move-to", str(tmp_path / "dups"))
    by_group = {g: sorted(Path(p).name for p in frame["path"]) for (g,), frame in groups.group_by("group_id")}
    assert sorted(by_group.values()) == [["img0.png", "img0_small.jpg"], ["img1.png", "img1_copy.png"]]
    keepers = set(groups.filter(pl.col("keeper"))["path"].map_elements(lambda p: Path(p).name, return_dtype=pl.String))
    assert keepers == {"img0.png", "img1.png"}  # the bigger image; the stored path of two identical files
    assert set(groups.filter(~pl.col("keeper"))["tier"]) == {"near", "exact"}
    for name in ("groups.parquet", "pairs.csv", "pairs.parquet", "gallery.html", "summary.json", "moves-planned.csv"):
        assert (tmp_path / "out" / name).is_file(), name
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stats"]["groups"] == 2 and summary["moves"]["applied"] is False
    assert "<img" in (tmp_path / "out" / "gallery.html").read_text()
    assert paths["near"].is_file() and paths["exact"].is_file() and not (tmp_path / "dups").exists()  # dry run

    _dedup(tmp_path, store, "--threshold", "0.9", "--move-to", str(tmp_path / "dups"), "--apply")
    assert not paths["near"].exists() and not paths["exact"].exists() and paths["img0"].is_file()
    [manifest] = (tmp_path / "dups").glob("lookalike-moves-*.csv")
    assert (tmp_path / "dups" / "img0_small.jpg").is_file()

    result = runner.invoke(app, ["dedup", "--undo", str(manifest)])
    assert result.exit_code == 0 and "restored 2" in result.output, result.output
    assert paths["near"].is_file() and paths["exact"].is_file()


@pytest.mark.parametrize("method", ["exact", "ivf", "ann", "blocked", "qdrant"])
def test_exact_and_approximate_graphs_give_the_same_groups(tmp_path: Path, method: str) -> None:
    _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    sample = ["--recall-sample", "8"] if method in ("ann", "ivf") else []
    groups = _dedup(tmp_path, store, "--threshold", "0.9", "--method", method, "--ef", "4", "--nprobe", "1", *sample)
    by_group = {g: sorted(Path(p).name for p in frame["path"]) for (g,), frame in groups.group_by("group_id")}
    assert sorted(by_group.values()) == [["img0.png", "img0_small.jpg"], ["img1.png", "img1_copy.png"]]
    stats = json.loads((tmp_path / "out" / "summary.json").read_text())["stats"]
    assert stats["method"] == {"blocked": "exact", "qdrant": "ann"}.get(method, method)
    assert (stats["ef"] == 4) == (stats["method"] == "ann")
    assert (stats["nprobe"] == 1) == (stats["method"] == "ivf")
    if method in ("ann", "ivf"):  # every point sampled: the one near edge ≥ 0.9 (the byte copy is one point) is found
        assert stats["recall"] == {"sampled_rows": 7, "exact_edges": 1, "found": 1}


def test_an_unknown_method_is_a_one_line_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dedup", "-c", "photos", "--threshold", "0.9", "--method", "hnsw"])
    assert result.exit_code == 2 and "expected auto, exact, ivf or ann" in result.output
    assert "Traceback" not in result.output


def _manifest_rows(tmp_path: Path) -> list[tuple[str, str, str]]:
    [manifest] = (tmp_path / "dups").glob("lookalike-moves-*.csv")
    return [(Path(o).name, s, r) for o, s, r in pl.read_csv(manifest).select("original", "status", "reason").rows()]


def test_apply_rechecks_the_keeper_a_replaced_keeper_moves_nothing(tmp_path: Path) -> None:
    """Campaign repro: replace a keeper with another image after ingest; its former copy must stay in the library."""
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    noise = np.random.default_rng(7).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(paths["img1"])  # the exact pair's keeper, replaced by a larger file (keeper by size)
    _dedup(tmp_path, store, "--threshold", "0.9", "--move-to", str(tmp_path / "dups"), "--apply")
    assert paths["exact"].read_bytes() != paths["img1"].read_bytes() and paths["exact"].is_file()
    rows = {name: (status, reason) for name, status, reason in _manifest_rows(tmp_path)}
    # the intact copy is now the keeper; the replaced file is listed for review, not moved
    assert rows["img1.png"][0] == "skipped" and rows["img1.png"][1].startswith("content changed since ingest")
    assert "img1_copy.png" not in rows and paths["img1"].is_file()
    assert rows["img0_small.jpg"][0] == "moved"  # the other group is unaffected


def test_a_copy_grown_by_one_byte_never_becomes_the_keeper(tmp_path: Path) -> None:
    """Campaign repro: appending a byte to a copy made it the largest file, and the untouched original was moved."""
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    with open(paths["exact"], "ab") as fh:
        fh.write(b"\0")
    groups = _dedup(tmp_path, store, "--threshold", "0.9", "--move-to", str(tmp_path / "dups"), "--apply")
    keeper = groups.filter(pl.col("keeper") & (pl.col("sha256") == _sha(paths["img1"])))
    assert keeper["path"].to_list() == [str(paths["img1"].resolve())] and paths["img1"].is_file()
    assert paths["exact"].is_file()  # changed since ingest: listed, not moved
    assert ("img1_copy.png", "skipped") in [(n, s) for n, s, _ in _manifest_rows(tmp_path)]


def test_undo_exits_3_when_a_file_cannot_go_back_and_2_for_a_hand_written_manifest(tmp_path: Path) -> None:
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    _dedup(tmp_path, store, "--threshold", "0.9", "--move-to", str(tmp_path / "dups"), "--apply")
    [manifest] = (tmp_path / "dups").glob("lookalike-moves-*.csv")
    (tmp_path / "dups" / "img0_small.jpg").write_bytes(b"replaced while in the moves folder")
    result = runner.invoke(app, ["dedup", "--undo", str(manifest)])
    assert result.exit_code == 3, result.output
    assert "restored 1" in result.stdout and "failed 1" in result.stdout
    assert "img0_small.jpg" in result.stderr and "content" in result.stderr
    assert not paths["near"].exists() and paths["exact"].is_file()
    forged = tmp_path / "dups" / "forged.csv"
    forged.write_text(manifest.read_text())
    result = runner.invoke(app, ["dedup", "--undo", str(forged)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "signature" in result.stderr


def test_exact_copies_across_ingest_runs_without_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the exact tier read only the last ingest run's report; the store now records every copy."""
    monkeypatch.chdir(tmp_path)  # the default report path is relative; keep it inside the test's folder
    paths = _planted_folder(tmp_path / "photos")
    later = tmp_path / "later"
    later.mkdir()
    shutil.copyfile(paths["img2"], later / "img2_again.png")
    store = ["--store", str(tmp_path / "qdrant")]
    for folder in ("photos", "later"):  # two runs: the second one's copy is already stored, under another path
        args = ["ingest", folder, "-c", "photos", "-e", "phash", "--workers", "0", "--no-progress", *store]
        assert runner.invoke(app, args).exit_code == 0
    args = ["dedup", "-c", "photos", "--out", "out", "--threshold", "0.99", "--no-progress", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--move-to", "dups", "--apply", *store])
    assert result.exit_code == 0, result.output
    exact = pl.read_csv(tmp_path / "out" / "groups.csv").filter(pl.col("sha256") == _sha(paths["img2"]))
    assert sorted(zip(exact["tier"], exact["path"], strict=True)) == [
        ("exact", str((later / "img2_again.png").resolve())),
        ("keeper", str(paths["img2"].resolve())),
    ]
    assert not (later / "img2_again.png").exists() and paths["img2"].is_file()  # still the same bytes: moved


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dedup_precision_from_labelled_pairs(tmp_path: Path) -> None:
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    rows = [(paths["img0"], paths["near"], 1), (paths["img1"], paths["exact"], 1)]
    rows += [(paths[f"img{i}"], paths[f"img{i + 1}"], 0) for i in range(5)]
    pl.DataFrame([(str(a), str(b), s) for a, b, s in rows], schema=["left", "right", "same"], orient="row").write_csv(
        tmp_path / "pairs.csv"
    )
    groups = _dedup(tmp_path, store, "--precision", "1.0", "--pairs", str(tmp_path / "pairs.csv"))
    assert groups["group_id"].n_unique() == 2
    calibration = json.loads((tmp_path / "out" / "summary.json").read_text())["calibration"]
    assert calibration["recall"] == 1.0 and calibration["precision"] == 1.0


def test_dedup_option_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dedup", "-c", "x", "--store", str(tmp_path / "q")])
    assert result.exit_code == 2 and "--threshold" in result.output
    result = runner.invoke(app, ["dedup", "-c", "x", "--threshold", "0.9", "--apply", "--store", str(tmp_path / "q")])
    assert result.exit_code == 2 and "--move-to" in result.output


def test_bench_and_eval_copies(tmp_path: Path) -> None:
    _planted_folder(tmp_path / "photos")
    bench = tmp_path / "bench"
    args = ["bench", "copies", str(tmp_path / "photos"), "--out", str(bench), "--originals", "2", "--copies", "3"]
    result = runner.invoke(app, [*args, "--distractors", "2", "--negatives", "1"])
    assert result.exit_code == 0, result.output
    assert (bench / "ground_truth.csv").is_file() and len(list((bench / "queries").iterdir())) == 7
    store = ["--store", str(tmp_path / "qdrant")]
    args = ["eval", "copies", str(bench), "-e", "phash", "--workers", "0", "--no-progress", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "eval"), *store])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert {"micro_ap", "recall_at_p90", "recall_at_1"} <= set(metrics)


def test_dedup_new_checks_a_folder_against_the_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out is relative: runs/dedup/<collection>-new
    paths = _planted_folder(tmp_path / "photos")
    store = ["--store", str(tmp_path / "qdrant")]
    _ingest(tmp_path, store)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copyfile(paths["img2"], new / "img2_copy.png")
    Image.open(paths["img3"]).resize((64, 48)).save(new / "img3_small.jpg", quality=85)
    rng = np.random.default_rng(9)
    fresh = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((128, 96), Image.Resampling.BICUBIC)
    fresh.save(new / "fresh.png")
    args = ["dedup", "-c", "photos", "--new", str(new), "--threshold", "0.9", "--no-progress", "--device", "cpu"]
    args += ["--workers", "0", *store]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "exact            1" in result.output and "near             1" in result.output
    report = pl.read_csv(tmp_path / "runs" / "dedup" / "photos-new" / "new-duplicates.csv")
    got = {
        Path(p).name: (s, Path(m).name if m else "")
        for p, s, m in report.select("new_path", "status", "match_path").rows()
    }
    assert got == {
        "img2_copy.png": ("exact", "img2.png"),
        "img3_small.jpg": ("near", "img3.png"),
        "fresh.png": ("unique", ""),
    }

    (new / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n then nothing an image needs")
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "1 new files could not be checked" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("moving", [["--apply"], ["--move-to", "dups"], ["--move-to", "dups", "--apply"]])
def test_dedup_new_refuses_to_move_in_one_line(tmp_path: Path, moving: list[str]) -> None:
    (tmp_path / "new").mkdir()
    args = ["dedup", "-c", "photos", "--new", str(tmp_path / "new"), "--threshold", "0.9", *moving]
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "qdrant")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "--new only reports" in result.stderr
    assert not (tmp_path / "qdrant").exists()  # refused before the store was opened
