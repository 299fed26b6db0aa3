"""`dedup --method ivf`'s graph against exact search and FAISS's IndexIVFFlat on the same data, in one run.

The data are dedup_scale.py's synthetic clustered unit vectors with planted near-duplicates. Each graph's edges
≥ 0.95 are compared with the exact graph's, and its time is printed beside exact's. FAISS gets the same number of
lists (√N) and probes. It is not a lookalike dependency: `pip install faiss-cpu` first, or its row is skipped.

    python benchmarks/ivf_vs_faiss.py --n 100000 --dim 512 --nprobe 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from dedup_scale import chunks

from pipeline.search.ivf import IvfOptions, ivf_topk
from pipeline.search.knn import KnnGraph, blocked_topk, threshold_edges


def found(graph: KnnGraph, exact: KnnGraph, threshold: float) -> str:
    """'found of wanted' exact edges ≥ threshold."""
    have, want = threshold_edges(graph, threshold), threshold_edges(exact, threshold)
    got = set(zip(have.left.tolist(), have.right.tolist(), strict=True))
    pairs = list(zip(want.left.tolist(), want.right.tolist(), strict=True))
    return f"{sum(p in got for p in pairs)} of {len(pairs)}"


def faiss_topk(x: np.ndarray, k: int, nlist: int, nprobe: int) -> KnnGraph:
    """IndexIVFFlat (inner product on unit rows), trained on 64 points per list, self dropped."""
    import faiss

    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    index.train(x[rng.choice(len(x), size=min(len(x), 64 * nlist), replace=False)])
    index.add(x)
    index.nprobe = nprobe
    scores, ids = index.search(x, k + 1)
    drop = (ids == np.arange(len(x))[:, None]) | (ids < 0)
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]
    kept, valid = np.take_along_axis(ids, order, 1), ~np.take_along_axis(drop, order, 1)
    return KnnGraph(np.where(valid, kept, -1), np.where(valid, np.take_along_axis(scores, order, 1), -np.inf))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    x = np.concatenate([c[1] for c in chunks(args.n, args.dim)])
    start = time.perf_counter()
    exact = blocked_topk(x, 10, "cosine")
    exact_s = time.perf_counter() - start
    print(f"{args.n:,} × {args.dim}, k 10, edges ≥ {args.threshold}: exact {exact_s:.1f} s")
    options = IvfOptions(nprobe=args.nprobe)
    runs = {"lookalike ivf": lambda: ivf_topk(x, 10, "cosine", options)}
    try:
        import faiss  # noqa: F401

        runs["faiss IndexIVFFlat"] = lambda: faiss_topk(x, 10, options.lists_for(args.n), args.nprobe)
    except ImportError:
        print("faiss IndexIVFFlat: skipped (pip install faiss-cpu)")
    for name, run in runs.items():
        start = time.perf_counter()
        graph = run()
        seconds = time.perf_counter() - start
        print(
            f"{name} (nprobe {args.nprobe}): {seconds:.1f} s ({exact_s / seconds:.1f}× exact), "
            f"{found(graph, exact, args.threshold)} exact edges"
        )


if __name__ == "__main__":
    main()
