"""Dedup time and peak memory against collection size, on synthetic vectors (a script, not a test).

Each size runs in its own child process so its peak resident memory (ru_maxrss) is its own. The timed work is
what `lookalike dedup --method blocked` does after reading the vectors: blocked exact top-k, the thresholded
edges, and the connected components. 1% of the vectors are planted near-duplicates of another one (cosine
≈ 0.99), so the number of groups found can be checked against the number planted.

    python benchmarks/dedup_scale.py                 # 10k and 100k
    python benchmarks/dedup_scale.py --sizes 10000 --with-1m --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from pipeline.dedup.groups import connected_groups
from pipeline.search.knn import auto_block_size, blocked_topk, threshold_edges


def synthetic(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(N, D) unit float32 vectors whose last 1% are noisy copies of distinct earlier rows; and that count."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    planted = n // 100
    sources = rng.choice(n - planted, size=planted, replace=False)
    x[n - planted :] = x[sources] + 0.1 * rng.standard_normal((planted, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, planted


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_one(n: int, dim: int, k: int, threshold: float, block: int | None, device: str) -> dict[str, float | int]:
    """Time one size in this process; peak RSS is measured before the data exists and at the end."""
    base = _rss_mib()
    x, planted = synthetic(n, dim)
    block_rows = block or auto_block_size(n)
    start = time.perf_counter()
    graph = blocked_topk(x, k, "cosine", block_rows, torch.device(device))
    knn_s = time.perf_counter() - start
    edges = threshold_edges(graph, threshold)
    groups = connected_groups(n, edges)
    total_s = time.perf_counter() - start
    return {
        "n": n,
        "dim": dim,
        "k": k,
        "block_rows": block_rows,
        "score_block_mib": block_rows * n * 4 / 2**20,
        "vectors_mib": n * dim * 4 / 2**20,
        "knn_s": knn_s,
        "components_s": total_s - knn_s,
        "total_s": total_s,
        "peak_rss_mib": _rss_mib(),
        "rss_before_data_mib": base,
        "groups": len(groups),
        "planted": planted,
    }


def _row(r: dict[str, float | int]) -> str:
    cells = [
        f"{r['n']:,}",
        f"{r['dim']}",
        f"{r['block_rows']}",
        f"{r['score_block_mib']:.0f}",
        f"{r['vectors_mib']:.0f}",
        f"{r['knn_s']:.1f}",
        f"{r['components_s']:.2f}",
        f"{r['total_s']:.1f}",
        f"{r['rss_before_data_mib']:.0f}",
        f"{r['peak_rss_mib']:.0f}",
        f"{r['groups']} / {r['planted']}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Parse options, run each size in a child process, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--with-1m", action="store_true", help="also 1,000,000 vectors (≈ 2 GiB of vectors)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--block-size", type=int, default=None, help="rows per block [auto: 256 MiB of scores]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child mode: one size, JSON out
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.dim, args.k, args.threshold, args.block_size, args.device)))
        return
    sizes = [*args.sizes, *([1_000_000] if args.with_1m else [])]
    print(f"device {args.device} · torch threads {torch.get_num_threads()} · threshold {args.threshold} · k {args.k}")
    head = ["N", "D", "block rows", "score block MiB", "vectors MiB", "k-NN s", "components s", "total s"]
    head += ["RSS before data MiB", "peak RSS MiB", "groups / planted"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for n in sizes:
        child = [sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--k", str(args.k)]
        child += ["--threshold", str(args.threshold), "--device", args.device]
        child += ["--block-size", str(args.block_size)] if args.block_size else []
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        print(_row(json.loads(out.strip().splitlines()[-1])), flush=True)


if __name__ == "__main__":
    main()
