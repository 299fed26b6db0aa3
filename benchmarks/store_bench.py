"""The embedded store side by side: qdrant-edge (lookalike's default) vs qdrant-client's local mode (the previous
default) vs exact numpy, through lookalike's own store contract (a script, not a test).

Each (engine, N, D) cell runs in its own child process, and opening a built store in a fresh grandchild, so
time and resident memory are that cell's own. Data is clustered unit vectors (N/50 centres, 50 points each): with
the default `--noise 0.9` a query's top-10 lie at cosine ≈ 0.57–0.65 and its 50th neighbour at 0.33–0.39, so the
top-10 must be told apart from ~40 near-equal cluster mates; `--noise 1.5` is harder (top-10 at 0.34–0.45, 50th at
0.21–0.28, overlapping other clusters at 128-d). 200 held-out queries with exact top-10 from numpy give recall@10.

What is measured, per cell:
    upsert       points/s writing N points in batches of 32 (ingest's batch), each acknowledged = durable
    open         seconds and RSS (MiB) to open the built store and count it, in a fresh process
    top10        ms per single unrestricted query, unindexed (exact scan) and, for edge, after HNSW is built
    recall@10    of those queries against numpy's exact top-10
    ids20        ms per query restricted to 20 point ids (a candidate task)
    batch64      ms for one batch of 64 queries
    scroll       seconds to read every vector back
    multivector  ms per MaxSim query over 5,000 points of 16 × 64-d vectors

    python benchmarks/store_bench.py                          # the README table (N 10k/50k/200k, D 128/512)
    python benchmarks/store_bench.py --sizes 10000 --dims 128 # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.store import Point, VectorSpec, VectorStore, edge, only_ids, point_id_for
from pipeline.store.edge import EdgeBackend
from pipeline.store.scoring import maxsim
from pipeline.store.server import ServerBackend

N_QUERIES = 200
BATCH = 32
EF_SWEEP = (32, 64, 128, 256, 512)


def clustered(n: int, dim: int, noise: float = 0.9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) unit vectors around N/50 random centres, and (N_QUERIES, D) held-out queries of the same kind."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), dim), dtype=np.float32)
    total = n + N_QUERIES
    x = centres[rng.integers(0, len(centres), total)] + noise * rng.standard_normal((total, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def exact_top10(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    scores = q @ x.T  # (Q, N)
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1)


def _rss_mib() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    """Resident memory now (the peak would include imports)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _ms_per(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / repeats


def open_store(engine: str, folder: Path) -> VectorStore:
    if engine == "edge":
        return VectorStore(EdgeBackend(folder))
    from qdrant_client import QdrantClient

    return VectorStore(ServerBackend(QdrantClient(path=str(folder)), "local mode", remote=False))


def _recall(store: VectorStore, spec: VectorSpec, q: np.ndarray, truth: np.ndarray, ids: list[str]) -> float:
    row_of = {pid: i for i, pid in enumerate(ids)}
    hits = store.query("c", spec, q, 10)
    found = [len({row_of[h.point_id] for h in row} & set(t.tolist())) for row, t in zip(hits, truth, strict=True)]
    return float(np.mean(found)) / 10


def _queries(store: VectorStore, spec: VectorSpec, q: np.ndarray, ids: list[str], repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    restricted = [only_ids(list(rng.choice(ids, 20, replace=False))) for _ in range(repeats)]
    it = iter(range(10**9))
    return {
        "top10_ms": _ms_per(lambda: store.query("c", spec, q[next(it) % len(q)], 10), repeats),
        "ids20_ms": _ms_per(lambda: store.query("c", spec, q[0], 20, restricted[next(it) % repeats]), repeats),
        "batch64_ms": _ms_per(lambda: store.query("c", spec, q[:64], 10), max(1, repeats // 10)),
    }


def run_cell(engine: str, n: int, dim: int, repeats: int, noise: float = 0.9) -> dict[str, object]:
    """One engine at one size, in this process."""
    x, q = clustered(n, dim, noise)
    truth = exact_top10(x, q)
    if engine == "numpy":
        restricted = np.random.default_rng(1).choice(n, (repeats, 20))
        it = iter(range(10**9))
        return {
            "top10_ms": _ms_per(lambda: exact_top10(x, q[next(it) % len(q)][None]), repeats),
            "ids20_ms": _ms_per(lambda: x[restricted[next(it) % repeats]] @ q[0], repeats),
            "batch64_ms": _ms_per(lambda: exact_top10(x, q[:64]), max(1, repeats // 10)),
            "recall10": 1.0,
            "rss_mib": _rss_mib(),
        }
    folder = Path(tempfile.mkdtemp(prefix=f"store-bench-{engine}-"))
    spec = VectorSpec("v", dim, "cosine")
    ids = [point_id_for(f"{i:064x}") for i in range(n)]
    out: dict[str, object] = {}
    try:
        with open_store(engine, folder) as store:
            store.ensure_collection("c", [spec])
            start = time.perf_counter()
            for s in range(0, n, BATCH):
                store.upsert(
                    "c", [Point(ids[i], {"v": x[i]}, {"path": f"/img/{i}.jpg"}) for i in range(s, s + BATCH) if i < n]
                )
            store.flush()
            out["upsert_pps"] = n / (time.perf_counter() - start)
            out |= _queries(store, spec, q, ids, repeats)
            out["recall10"] = _recall(store, spec, q, truth, ids)
            start = time.perf_counter()
            sum(1 for _ in store.scroll("c", "v"))
            out["scroll_s"] = time.perf_counter() - start
            if engine == "edge":
                _hnsw(store, spec, q, truth, ids, repeats, out)
        out |= _open_in_child(engine, folder)
        out["disk_mib"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["rss_mib"] = _rss_mib()
    return out


def _hnsw(
    store: VectorStore, spec: VectorSpec, q: np.ndarray, truth: np.ndarray, ids: list[str], repeats: int, out: dict
) -> None:
    backend = store.backend
    assert isinstance(backend, EdgeBackend)
    backend.index_min_points = 0
    start = time.perf_counter()
    store.build_index("c")
    out["index_s"] = time.perf_counter() - start
    for ef in EF_SWEEP:
        backend.hnsw_ef = ef
        out[f"hnsw_ef{ef}_recall10"] = _recall(store, spec, q, truth, ids)
        out[f"hnsw_ef{ef}_top10_ms"] = _queries(store, spec, q, ids, repeats)["top10_ms"]
    backend.hnsw_ef = 128
    timed = _queries(store, spec, q, ids, repeats)
    out |= {f"hnsw_{k}": v for k, v in timed.items()}


def _open_in_child(engine: str, folder: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--open-only", engine, str(folder)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)  # type: ignore[no-any-return]


def open_only(engine: str, folder: Path) -> None:
    before = _current_rss_mib()
    start = time.perf_counter()
    with open_store(engine, folder) as store:
        store.count("c")
        seconds = time.perf_counter() - start
        rss = _current_rss_mib() - before
    print(json.dumps({"open_s": seconds, "open_rss_mib": rss}))


def multivector_cell(engine: str, n: int = 5000, k: int = 16, dim: int = 64, repeats: int = 5) -> dict[str, object]:
    rng = np.random.default_rng(0)
    sets = rng.standard_normal((n, k, dim), dtype=np.float32)
    query = rng.standard_normal((k, dim), dtype=np.float32)
    if engine == "numpy":
        return {"maxsim_ms": _ms_per(lambda: maxsim(query[None], sets), repeats)}
    folder = Path(tempfile.mkdtemp(prefix=f"store-bench-mv-{engine}-"))
    spec = VectorSpec("m", dim, "dot", multivector=True)
    try:
        with open_store(engine, folder) as store:
            store.ensure_collection("c", [spec])
            for s in range(0, n, 256):
                store.upsert("c", [Point(point_id_for(str(i)), {"m": sets[i]}) for i in range(s, min(n, s + 256))])
            store.build_index("c")
            return {"maxsim_ms": _ms_per(lambda: store.query("c", spec, query, 10), repeats)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child(args: list[str]) -> dict[str, object]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--engines", nargs="+", default=["edge", "local", "numpy"])
    parser.add_argument("--local-max-n", type=int, default=50_000, help="local mode only up to this N (it is slow)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.9, help="per-dimension noise around the centres (harder: 1.5)")
    parser.add_argument("--hnsw-m", type=int, default=edge.HNSW_M, help="graph degree of new collections")
    parser.add_argument("--hnsw-ef-construct", type=int, default=edge.HNSW_EF_CONSTRUCT, help="build-time beam")
    parser.add_argument("--cell", nargs=3, metavar=("ENGINE", "N", "DIM"), help=argparse.SUPPRESS)
    parser.add_argument("--multivector", metavar="ENGINE", help=argparse.SUPPRESS)
    parser.add_argument("--open-only", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    edge.HNSW_M, edge.HNSW_EF_CONSTRUCT = args.hnsw_m, args.hnsw_ef_construct
    if args.open_only:
        return open_only(args.open_only[0], Path(args.open_only[1]))
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), int(args.cell[2]), args.repeats, args.noise)))
        return None
    if args.multivector:
        print(json.dumps(multivector_cell(args.multivector)))
        return None
    for dim in args.dims:
        for n in args.sizes:
            for engine in args.engines:
                if engine == "local" and n > args.local_max_n:
                    print(json.dumps({"engine": engine, "n": n, "dim": dim, "skipped": f"N > {args.local_max_n}"}))
                    continue
                cell = ["--cell", engine, str(n), str(dim), "--repeats", str(args.repeats), "--noise", str(args.noise)]
                result = _child(cell + _graph(args))
                print(json.dumps({"engine": engine, "n": n, "dim": dim, **_rounded(result)}), flush=True)
    for engine in args.engines:
        print(
            json.dumps(
                {"engine": engine, "multivector": "5000 x 16 x 64", **_rounded(_child(["--multivector", engine]))}
            )
        )
    return None


def _graph(args: argparse.Namespace) -> list[str]:
    return ["--hnsw-m", str(args.hnsw_m), "--hnsw-ef-construct", str(args.hnsw_ef_construct)]


def _rounded(result: dict[str, object]) -> dict[str, object]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}


if __name__ == "__main__":
    main()
