"""Dedup at scale: the approximate k-NN graphs (FAISS IVF, `dedup --method ivf`; the engine's HNSW index,
`--method ann`) against exact search, 100k → 1M images.

Synthetic clustered unit vectors with planted near-duplicates stand in for a collection: N / 2,000 clusters (images
of one cluster score ≈ 0.5 with each other), and 2% of the rows are noisy copies of another row of the same chunk of
50,000 (a fifth of them copies of copies, so some groups are chains of three), at cosine 0.93 … 0.997 to their
source, so some planted pairs fall just below the 0.95 threshold as real ones do. Rows are generated chunk by chunk
from a seed, so no process ever holds all vectors and the check can regenerate them. Each planted row gets a real
file (its payload path and sha256), so `dedup` stats and hashes them as it would; the other rows' files do not exist.

Each step runs in its own child process, so its peak resident memory (ru_maxrss) is its own:
    build   upsert every point into an embedded store (qdrant-edge), then build its HNSW index (only when an ann
            run follows: ingest builds it, ivf does not use it)
    ivf     `find_duplicates(… method=ivf)` for each --nprobes: the whole dedup (reading the vectors, the inverted
            file, k-NN, edges, groups, file checks)
    ann     the same with method=ann for each --efs (one HNSW query per point through the engine)
    exact   the same with method=exact (blocked top-k, every pair), up to --exact-max points
    check   edge recall of each approximate graph: against the exact run's edges when there was one, else against
            the exact top-k of a random --sample of points (streamed over all rows); and the share of planted pairs
            ≥ the threshold found, and of the exact groups reproduced exactly

    python benchmarks/dedup_scale.py --sizes 100000 --dims 128 512
    python benchmarks/dedup_scale.py --sizes 1000000 --dims 128 --exact-max 0 --methods ivf --sample 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pipeline.core.config import StoreConfig
from pipeline.core.files import sha256_file
from pipeline.dedup.find import DedupConfig, find_duplicates
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.groups import groups_reproduced
from pipeline.search.knn import Edges, KnnGraph, edge_recall
from pipeline.store import Point, VectorSpec, VectorStore

CHUNK = 50_000
PLANTED = 0.02
COLLECTION = "scale"
CPU = torch.device("cpu")


def chunk_vectors(n: int, dim: int, start: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows start … start+CHUNK of the synthetic set: (M, D) unit float32 vectors, and the planted (copy, source)
    row pairs of this chunk (global row numbers)."""
    centers = np.random.default_rng([seed, 0]).standard_normal((max(16, n // 2000), dim), dtype=np.float32)
    m = min(CHUNK, n - start)
    rng = np.random.default_rng([seed, 1, start])
    x = centers[rng.integers(len(centers), size=m)] + rng.standard_normal((m, dim), dtype=np.float32)
    planted = int(m * PLANTED)
    rows = rng.permutation(m)
    copies, sources = rows[:planted], rows[planted : 2 * planted].copy()
    chained = rng.random(planted) < 0.2
    sources[chained] = np.roll(copies, 1)[chained]  # a copy of another copy: chains of three
    order = np.argsort(chained, kind="stable")  # plain copies first, so a chained source is already final
    for i in order:
        noise = rng.uniform(0.1, 0.55) * rng.standard_normal(dim, dtype=np.float32)
        x[copies[i]] = x[sources[i]] + noise * np.linalg.norm(x[sources[i]]) / np.sqrt(2 * dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, copies + start, sources + start


def chunks(n: int, dim: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    for start in range(0, n, CHUNK):
        yield (start, *chunk_vectors(n, dim, start))


def point_id(row: int) -> str:
    return str(uuid.UUID(int=row + 1))


def row_of(pid: str) -> int:
    return uuid.UUID(pid).int - 1


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class PeakAnon:
    """Peak anonymous resident memory (RssAnon: heap, not the engine's memory-mapped files, which the kernel can
    drop and re-read), sampled every 0.2 s on a thread while the block runs."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mib = max(self.peak_mib, _anon_mib())

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, _anon_mib())


def _anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _disk_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def _files_for(rows: np.ndarray, folder: Path) -> dict[int, tuple[str, str]]:
    """A small real file per planted row: (path, sha256)."""
    out = {}
    for r in rows.tolist():
        path = folder / f"{r // 1000:04d}" / f"{r}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(r.to_bytes(8, "little"))
        out[r] = (str(path), sha256_file(path))
    return out


def build(n: int, dim: int, work: Path, hnsw: bool) -> dict[str, float]:
    """Upsert every point (1,024 per acknowledged write), then build the HNSW index when `hnsw`."""
    spec = VectorSpec("v", dim, "cosine")
    start = time.perf_counter()
    with PeakAnon() as anon, VectorStore.open(StoreConfig(path=str(work / "store"))) as store:
        store.ensure_collection(COLLECTION, [spec], {"v": "synthetic"})
        for first, x, copies, sources in chunks(n, dim):
            files = _files_for(np.r_[copies, sources], work / "files")
            for s in range(0, len(x), 1024):
                rows = range(first + s, first + min(len(x), s + 1024))
                store.upsert(COLLECTION, [_point(r, x[r - first], files) for r in rows])
        upsert_s = time.perf_counter() - start
        if hnsw:
            store.build_index(COLLECTION)
    index_s = time.perf_counter() - start - upsert_s if hnsw else 0.0
    disk = _disk_mib(work / "store")
    return {
        "upsert_s": upsert_s,
        "index_s": index_s,
        "rss_mib": _rss_mib(),
        "anon_mib": anon.peak_mib,
        "disk_mib": disk,
    }


def _point(row: int, vector: np.ndarray, files: dict[int, tuple[str, str]]) -> Point:
    path, sha = files.get(row, (f"/nonexistent/{row}.bin", ""))
    return Point(point_id(row), {"v": vector}, {"path": path, "sha256": sha, "width": 1, "height": 1})


def dedup(n: int, dim: int, work: Path, method: str, k: int, threshold: float, param: int) -> dict[str, float]:
    """The whole `find_duplicates` on the built store (`param`: ann's ef, ivf's nprobe); its near edges and groups
    are saved for the check."""
    graph = GraphOptions(
        k=k, method=DedupMethod(method), ef=param or GraphOptions.ef, nprobe=param or GraphOptions.nprobe
    )
    config = DedupConfig(COLLECTION, threshold, graph, progress=False)
    start = time.perf_counter()
    with PeakAnon() as anon, VectorStore.open(StoreConfig(path=str(work / "store"))) as store:
        result = find_duplicates(store, config, VectorSpec("v", dim, "cosine"), CPU)
    seconds = time.perf_counter() - start
    near = [(row_of(p.left_id), row_of(p.right_id), p.score) for p in result.pairs if p.tier == "near"]
    left, right, score = (np.array(c) for c in zip(*near, strict=True)) if near else (np.zeros(0),) * 3
    groups = {}
    for m in result.members:
        groups.setdefault(m.group_id, []).append(row_of(m.point_id))
    np.savez(
        work / _npz(method, param),
        left=left,
        right=right,
        score=score,
        sizes=[len(g) for g in groups.values()],
        rows=np.array([r for g in groups.values() for r in g], dtype=np.int64),
    )
    s = result.stats
    return {
        "seconds": seconds,
        "knn_s": s.knn_seconds,
        "index_s": s.index_seconds,
        "rss_mib": _rss_mib(),
        "anon_mib": anon.peak_mib,
        "groups": s.groups,
        "near_pairs": s.near_pairs,
    }


def _npz(method: str, param: int) -> str:
    return {"ann": f"ann-ef{param}.npz", "ivf": f"ivf-p{param}.npz"}.get(method, f"{method}.npz")


def _saved(work: Path, name: str) -> tuple[Edges, list[np.ndarray]]:
    data = np.load(work / name)
    left, right = np.minimum(data["left"], data["right"]), np.maximum(data["left"], data["right"])
    edges = Edges(left.astype(np.int64), right.astype(np.int64), data["score"].astype(np.float32))
    groups = np.split(data["rows"], np.cumsum(data["sizes"])[:-1]) if data["sizes"].size else []
    return edges, groups


def sampled_exact(n: int, dim: int, sample: np.ndarray, k: int, block: int = 2048) -> KnnGraph:
    """Exact top-k of the sampled rows among all rows: one generated chunk at a time, `block` queries at a time
    (torch top-k, a (block, CHUNK) score matrix at most)."""
    queries = torch.from_numpy(
        np.concatenate([x[np.isin(np.arange(first, first + len(x)), sample)] for first, x, _, _ in chunks(n, dim)])
    )
    best_s = torch.full((sample.size, k), -torch.inf)
    best_i = torch.full((sample.size, k), -1, dtype=torch.int64)
    own = torch.from_numpy(sample)
    for first, x, _, _ in chunks(n, dim):
        rows = torch.arange(first, first + len(x))
        for q in range(0, sample.size, block):
            sims = queries[q : q + block] @ torch.from_numpy(x).T
            sims[own[q : q + block, None] == rows[None, :]] = -torch.inf  # not its own neighbour
            top = torch.topk(sims, min(k, sims.shape[1]), dim=1)
            all_s = torch.cat([best_s[q : q + block], top.values], dim=1)
            all_i = torch.cat([best_i[q : q + block], rows[top.indices]], dim=1)
            merged = torch.topk(all_s, k, dim=1)
            best_s[q : q + block], best_i[q : q + block] = merged.values, torch.gather(all_i, 1, merged.indices)
    return KnnGraph(best_i.numpy(), best_s.numpy())


def planted_found(n: int, dim: int, edges: Edges, groups: list[np.ndarray], threshold: float) -> tuple[int, int]:
    """(planted pairs at or above the threshold, how many of them ended in one group)."""
    group_of = {int(r): i for i, g in enumerate(groups) for r in g}
    want = found = 0
    for first, x, copies, sources in chunks(n, dim):
        cos = np.sum(x[copies - first] * x[sources - first], axis=1)
        for c, s in zip(copies[cos >= threshold].tolist(), sources[cos >= threshold].tolist(), strict=True):
            want += 1
            found += group_of.get(c, -1) == group_of.get(s, -2)
    return want, found


def check(n: int, dim: int, work: Path, method: str, args: argparse.Namespace, param: int) -> dict[str, float]:
    """Edge recall and group reproduction of an approximate run against exact (full when the exact run exists)."""
    k, threshold, sample = args.k, args.threshold, args.sample
    edges, groups = _saved(work, _npz(method, param))
    out: dict[str, float] = {}
    if (work / "exact.npz").is_file():
        exact_edges, exact_groups = _saved(work, "exact.npz")
        have = set(zip(edges.left.tolist(), edges.right.tolist(), strict=True))
        want = list(zip(exact_edges.left.tolist(), exact_edges.right.tolist(), strict=True))
        out |= {"exact_edges": len(want), "edge_recall": sum(p in have for p in want) / max(1, len(want))}
        out |= {"exact_groups": len(exact_groups), "groups_same": groups_reproduced(exact_groups, groups)}
    else:
        rows = np.sort(np.random.default_rng(1).choice(n, size=min(sample, n), replace=False))
        recall = edge_recall(rows, sampled_exact(n, dim, rows, k), edges, threshold)
        out |= {"exact_edges": recall.exact_edges, "edge_recall": recall.recall, "sampled": recall.sampled_rows}
    want, found = planted_found(n, dim, edges, groups, threshold)
    return out | {"planted": want, "planted_found": found}


def _child(step: str, args: argparse.Namespace, n: int, dim: int, work: Path, method: str = "", param: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--step", step, "--method", method or "ann", "--work", str(work)]
    cmd += ["--sizes", str(n)]
    cmd += ["--dims", str(dim), "--k", str(args.k), "--threshold", str(args.threshold), "--sample", str(args.sample)]
    cmd += ["--param", str(param), "--methods", *args.methods]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def approximate_runs(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(method, ef or nprobe) of every approximate run asked for."""
    params = {"ivf": args.nprobes, "ann": args.efs}
    return [(method, p) for method in args.methods for p in params[method]]


def run_size(args: argparse.Namespace, n: int, dim: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"dedup-{n}-{dim}-", dir=args.tmp))
    runs = approximate_runs(args)
    try:
        row: dict = {"n": n, "dim": dim, "build": _child("build", args, n, dim, work)}
        row["runs"] = {f"{m} {p}": _child("dedup", args, n, dim, work, m, p) for m, p in runs}
        if n <= args.exact_max:
            row["exact"] = _child("dedup", args, n, dim, work, "exact")
        row["check"] = {f"{m} {p}": _child("check", args, n, dim, work, m, p) for m, p in runs}
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table_rows(r: dict) -> list[str]:
    return [table_row(r, run) for run in r["runs"]]


def table_row(r: dict, run: str) -> str:
    b, a, c, e = r["build"], r["runs"][run], r["check"][run], r.get("exact")
    whole = b["index_s"] + a["seconds"] if run.startswith("ann") else a["seconds"]
    method, param = run.split()
    cells = [
        f"{r['n']:,} × {r['dim']}",
        f"{method} ({'ef' if method == 'ann' else 'nprobe'} {param})",
        f"{b['upsert_s']:.0f}",
        f"{b['index_s']:.0f}" if b["index_s"] else "—",
        f"{a['knn_s']:.1f}",
        f"{a['seconds']:.1f}",
        f"{whole / 60:.1f}",
        f"{a['rss_mib']:,.0f} ({a.get('anon_mib', 0):,.0f})",
        f"{b['rss_mib']:,.0f} ({b.get('anon_mib', 0):,.0f})",
        f"{b['disk_mib']:,.0f}",
        f"{e['seconds']:.0f} ({e['seconds'] / a['seconds']:.1f}× · k-NN {e['knn_s'] / a['knn_s']:.1f}×)" if e else "—",
        f"{c['edge_recall']:.4f} of {c['exact_edges']:,}" + (f" (sample {c['sampled']:,})" if "sampled" in c else ""),
        f"{c['groups_same']:,} / {c['exact_groups']:,}" if "groups_same" in c else "—",
        f"{c['planted_found']:,} / {c['planted']:,}",
    ]
    return "| " + " | ".join(cells) + " |"


HEAD = [
    "N × D",
    "method",
    "upsert s",
    "HNSW build s",
    "k-NN s",
    "dedup s",
    "(HNSW) index + dedup min",
    "dedup peak RSS MiB (anonymous)",
    "build peak RSS MiB (anonymous)",
    "store disk MiB",
    "exact dedup s (÷ this: whole · k-NN)",
    "edge recall vs exact",
    "exact groups reproduced",
    "planted pairs ≥ threshold grouped",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=["ivf", "ann"], choices=["ivf", "ann"])
    parser.add_argument("--efs", type=int, nargs="+", default=[GraphOptions.ef], help="HNSW beams of ann runs")
    parser.add_argument("--nprobes", type=int, nargs="+", default=[GraphOptions.nprobe], help="lists ivf runs scan")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--exact-max", type=int, default=100_000, help="run exact dedup up to this many points")
    parser.add_argument("--sample", type=int, default=2000, help="points checked exactly beyond --exact-max")
    parser.add_argument("--tmp", default=None, help="where the stores go [system temp]")
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="ann", help=argparse.SUPPRESS)
    parser.add_argument("--param", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        n, dim = args.sizes[0], args.dims[0]
        steps = {
            "build": lambda: build(n, dim, args.work, hnsw="ann" in args.methods),
            "dedup": lambda: dedup(n, dim, args.work, args.method, args.k, args.threshold, args.param),
            "check": lambda: check(n, dim, args.work, args.method, args, args.param),
        }
        print(json.dumps(steps[args.step]()))
        return
    runs = approximate_runs(args)
    print(f"k {args.k} · runs {runs} · threshold {args.threshold} · {torch.get_num_threads()} threads")
    print("| " + " | ".join(HEAD) + " |\n|" + "---:|" * len(HEAD), flush=True)
    for dim in args.dims:
        for n in args.sizes:
            row = run_size(args, n, dim)
            print("\n".join(table_rows(row)), flush=True)
            print(json.dumps(row), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
