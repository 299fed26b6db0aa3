"""Duplicate groups: components and keepers on a hand-made graph, then whole collections in a memory store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from fakes import TinyEncoder, write_noise_images

from pipeline.core.config import IngestConfig
from pipeline.core.errors import LookalikeError
from pipeline.dedup.find import DedupConfig, find_duplicates
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.groups import PointTable, assemble_groups, connected_groups, keeper_rank
from pipeline.dedup.table import exact_copies, read_report_copies
from pipeline.index.ingest import encoder_vector_spec, ingest
from pipeline.index.sources import list_source
from pipeline.search.knn import Edges
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for

CPU = torch.device("cpu")


def _edges(pairs: list[tuple[int, int]]) -> Edges:
    left = np.array([min(p) for p in pairs], dtype=np.int64)
    right = np.array([max(p) for p in pairs], dtype=np.int64)
    return Edges(left, right, np.ones(len(pairs), dtype=np.float32))


def test_connected_components_of_a_hand_made_graph() -> None:
    # 0-1-2 chain, 3-4 pair, 5 alone, 6 alone but has exact copies, 7-8-9-7 triangle
    groups = connected_groups(10, _edges([(0, 1), (1, 2), (3, 4), (7, 8), (8, 9), (9, 7)]), also=[6])
    assert [g.tolist() for g in groups] == [[0, 1, 2], [7, 8, 9], [3, 4], [6]]


def test_no_edges_means_no_groups() -> None:
    assert connected_groups(4, _edges([])) == []


def test_keeper_is_most_pixels_then_largest_file_then_stored_path() -> None:
    candidates = {
        "small": keeper_rank(100 * 100, 9_000, True, "/a/small.jpg"),
        "big_light": keeper_rank(200 * 100, 1_000, True, "/a/big_light.jpg"),
        "big_heavy": keeper_rank(200 * 100, 2_000, True, "/a/big_heavy.png"),
        "big_heavy_copy": keeper_rank(200 * 100, 2_000, False, "/a/aaa_copy.png"),
    }
    assert min(candidates, key=lambda k: candidates[k]) == "big_heavy"


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else ""


def _table(paths: list[str], sizes: list[tuple[int, int]], vectors: np.ndarray) -> PointTable:
    wh = np.array(sizes, dtype=np.int64)
    return PointTable(
        ids=tuple(f"id{i}" for i in range(len(paths))),
        paths=tuple(paths),
        sha256=tuple(_sha(p) for p in paths),
        width=wh[:, 0],
        height=wh[:, 1],
        has_vector=np.ones(len(paths), dtype=bool),
        vectors=vectors,
    )


def test_assemble_groups_scores_every_file_against_the_keeper(tmp_path: Path) -> None:
    files = []
    for name, size in (("a.jpg", 10), ("b.jpg", 30), ("c.jpg", 20), ("b_copy.jpg", 30)):
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(str(tmp_path / name))
    table = _table(files[:3], [(50, 50), (100, 80), (100, 80)], np.eye(3, dtype=np.float32))
    table_scores = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.9], [0.6, 0.9, 1.0]])
    members, missing = assemble_groups(table, [np.array([0, 1, 2])], {1: [files[3]]}, lambda a, b: table_scores[a, b])
    assert missing == 0
    got = [(Path(m.path).name, m.tier, m.score) for m in members]
    # b.jpg and c.jpg tie on pixels; b.jpg is the larger file; its byte-identical copy is "exact"
    assert got == [
        ("b.jpg", "keeper", 1.0),
        ("b_copy.jpg", "exact", 1.0),
        ("c.jpg", "near", 0.9),
        ("a.jpg", "near", 0.8),
    ]
    assert members[0].keeper and not any(m.keeper for m in members[1:])


def test_keeper_is_never_a_file_changed_since_ingest(tmp_path: Path) -> None:
    """The campaign's case: one byte appended to a copy made it the largest file, and the keeper."""
    for name in ("original.jpg", "copy.jpg"):
        (tmp_path / name).write_bytes(b"x" * 20)
    files = [str(tmp_path / "original.jpg"), str(tmp_path / "copy.jpg")]
    table = _table(files, [(50, 50), (50, 50)], np.eye(2, dtype=np.float32))
    with open(files[1], "ab") as fh:
        fh.write(b"!")
    members, _ = assemble_groups(table, [np.array([0, 1])], {}, lambda a, b: np.ones(a.size))
    assert [(Path(m.path).name, m.tier, m.changed) for m in members] == [
        ("original.jpg", "keeper", False),
        ("copy.jpg", "near", True),
    ]


def test_missing_files_are_dropped_with_their_group(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    table = _table([str(tmp_path / "a.jpg"), str(tmp_path / "gone.jpg")], [(1, 1), (1, 1)], np.eye(2, dtype=np.float32))
    members, missing = assemble_groups(table, [np.array([0, 1])], {}, lambda a, b: np.ones(a.size))
    assert members == [] and missing == 1


def _collection(store: VectorStore, folder: Path, vectors: np.ndarray) -> list[str]:
    """One file and one point per vector; sizes grow with the index so the last of a group is the keeper."""
    spec = VectorSpec("v", vectors.shape[1], "cosine")
    store.ensure_collection("c", [spec])
    paths, points = [], []
    for i, vec in enumerate(vectors):
        path = folder / f"img{i:02d}.jpg"
        path.write_bytes(bytes([i]) * (100 + i))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        payload = {"path": str(path), "sha256": sha, "width": 10, "height": 10}
        points.append(Point(point_id_for(sha), {"v": vec}, payload))
        paths.append(str(path))
    store.upsert("c", points)
    return paths


def _planted(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 16)).astype(np.float32)
    x[10] = x[3] + 0.01 * rng.normal(size=16)  # 3 ~ 10 ~ 20 (three near pairs): one group of three
    x[20] = x[10] + 0.01 * rng.normal(size=16)
    x[25] = x[7] + 0.01 * rng.normal(size=16)  # 7 ~ 25
    return x


@pytest.mark.parametrize("method", list(DedupMethod)[1:])
def test_find_duplicates_finds_planted_groups(vector_store: VectorStore, tmp_path: Path, method: DedupMethod) -> None:
    paths = _collection(vector_store, tmp_path, _planted())
    approximate = method in (DedupMethod.ANN, DedupMethod.IVF)
    graph = GraphOptions(k=4, method=method, block_size=8, recall_sample=30 if approximate else 0)
    config = DedupConfig("c", threshold=0.95, graph=graph, progress=False)
    result = find_duplicates(vector_store, config, VectorSpec("v", 16, "cosine"), CPU)
    groups: dict[int, list[str]] = {}
    for m in result.members:
        groups.setdefault(m.group_id, []).append(Path(m.path).name)
    assert groups == {1: ["img20.jpg", "img10.jpg", "img03.jpg"], 2: ["img25.jpg", "img07.jpg"]}
    assert result.stats.near_pairs == 4 and result.stats.files_to_move == 3 and result.stats.method == method
    assert all(m.score > 0.95 for m in result.members)
    assert {Path(p).name for p in paths} >= {Path(m.path).name for m in result.members}
    if approximate:  # all 30 points sampled: the exact graph's 4 edges ≥ 0.95, each found
        assert result.stats.recall is not None and result.stats.recall.exact_edges == 4
        assert result.stats.recall.recall == 1.0
    else:
        assert result.stats.recall is None
    assert (result.stats.nlist is not None) == (method == DedupMethod.IVF)


def test_exact_tier_also_reads_a_legacy_ingest_report(vector_store: VectorStore, tmp_path: Path) -> None:
    paths = _collection(vector_store, tmp_path, _planted())
    copy = tmp_path / "img05_copy.jpg"
    copy.write_bytes(Path(paths[5]).read_bytes())
    report = tmp_path / "c-ingest.csv"
    rows = [
        {"path": str(copy), "status": "duplicate_content", "reason": "x", "point_id": point_id_for(_sha(paths[5]))},
        {"path": str(tmp_path / "moved.jpg"), "status": "duplicate_content", "reason": "x", "point_id": "nope"},
        {"path": str(tmp_path / "bad.jpg"), "status": "failed", "reason": "x", "point_id": ""},
    ]
    pl.DataFrame(rows).write_csv(report)
    config = DedupConfig("c", threshold=0.95, graph=GraphOptions(k=4), ingest_report=report, progress=False)
    result = find_duplicates(vector_store, config, VectorSpec("v", 16, "cosine"), CPU)
    exact = [m for m in result.members if m.point_id == point_id_for(_sha(paths[5]))]
    assert sorted((Path(m.path).name, m.tier) for m in exact) == [("img05.jpg", "keeper"), ("img05_copy.jpg", "exact")]
    assert result.stats.exact_copy_files == 1
    assert [p.tier for p in result.pairs if p.group_id == exact[0].group_id] == ["exact"]


def test_no_report_and_no_duplicate_paths_mean_no_exact_copies() -> None:
    assert read_report_copies(None, {}) == [] and read_report_copies(Path("/nonexistent.csv"), {}) == []
    assert exact_copies(_table(["/a.jpg"], [(1, 1)], np.eye(1, dtype=np.float32)), Path("/nonexistent.csv")) == {}


def test_exact_tier_spans_separate_ingest_runs(vector_store: VectorStore, tmp_path: Path) -> None:
    """Regression: the exact tier came from the last ingest run's report, so a copy ingested in an earlier run
    (or one already stored when its copy was ingested) was missed."""
    [original] = write_noise_images(tmp_path / "a", 1)
    write_noise_images(tmp_path / "b", 2, seed=5)
    copy = tmp_path / "b" / "copy.png"
    copy.write_bytes(original.read_bytes())
    config = IngestConfig("c", batch_size=4, workers=0, report_path=tmp_path / "ingest.csv", progress=False)
    for folder in ("a", "b", "b"):  # the second run of b/ must not list the copy twice
        ingest(list_source(tmp_path / folder), TinyEncoder(), vector_store, config, CPU)
    dedup = DedupConfig("c", 0.999, GraphOptions(k=2), ingest_report=tmp_path / "ingest.csv", progress=False)
    result = find_duplicates(vector_store, dedup, encoder_vector_spec(TinyEncoder()), CPU)
    got = sorted((m.path, m.tier) for m in result.members)
    assert got == [(str(original.resolve()), "keeper"), (str(copy.resolve()), "exact")]
    assert result.stats.exact_copy_files == 1 and [p.tier for p in result.pairs] == ["exact"]


@pytest.mark.parametrize("method", list(DedupMethod)[1:])
def test_an_empty_collection_has_no_groups(vector_store: VectorStore, method: DedupMethod) -> None:
    spec = VectorSpec("v", 8, "cosine")
    vector_store.ensure_collection("empty", [spec])
    config = DedupConfig("empty", threshold=0.9, graph=GraphOptions(method=method, recall_sample=5), progress=False)
    result = find_duplicates(vector_store, config, spec, CPU)
    assert result.members == () and result.stats.points == 0 and result.stats.largest_group == 0


def test_a_multivector_collection_is_refused_in_one_line(vector_store: VectorStore) -> None:
    spec = VectorSpec("m", 8, "dot", multivector=True)
    vector_store.ensure_collection("late", [spec])
    with pytest.raises(LookalikeError, match="multivector") as caught:
        find_duplicates(vector_store, DedupConfig("late", threshold=0.9, progress=False), spec, CPU)
    assert "\n" not in str(caught.value) and "siamese@DIR" in str(caught.value)
