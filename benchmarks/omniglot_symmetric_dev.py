"""Query-side vs symmetric cell matching for `siamese:local@DIR`, on the Omniglot development split (issue 4).

The encoder scores cos(global) + w × (mean over the query's cells of its best cell cosine in the candidate), which
is what Qdrant's MaxSim computes; `--loss supcon-local` trains on the symmetrised form (the mean of both
directions). For checkpoints runs/omniglot-dev/NAME (from `omniglot_synthetic_dev.py`), this scores the 2,000
within-Balinese tasks both ways and candidate-side only, for w = 2, 3, 4. Never the test alphabets.

    .venv/bin/python benchmarks/omniglot_symmetric_dev.py local base
"""

from __future__ import annotations

import argparse

import numpy as np
from omniglot_dev import DATA, OUT
from omniglot_local_weight_dev import features

from pipeline.datasets.omniglot import load_omniglot

WEIGHTS = (2.0, 3.0, 4.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+")
    names = p.parse_args().names
    tasks = load_omniglot(DATA / "images_background_small1").oneshot_tasks(20, 2000, 0, ["Balinese"])
    paths = sorted({q for t in tasks for q in (t.query, *t.gallery)})
    index = {q: i for i, q in enumerate(paths)}
    answers = np.array([t.answer for t in tasks])
    for name in names:
        global_, cells = features(OUT / name, paths)
        g_scores, query_side, gallery_side = [], [], []
        for t in tasks:
            query, gallery = index[t.query], [index[q] for q in t.gallery]
            g_scores.append(np.maximum(global_[gallery] @ global_[query], 0))
            sim = np.einsum("kd,gld->gkl", cells[query], cells[gallery])  # (20, K query cells, L gallery cells)
            query_side.append(np.maximum(sim.max(axis=2), 0).mean(axis=1))
            gallery_side.append(np.maximum(sim.max(axis=1), 0).mean(axis=1))
        g, q_, c_ = np.array(g_scores), np.array(query_side), np.array(gallery_side)

        def top1(scores: np.ndarray) -> float:
            return float(np.mean(scores.argmax(1) == answers))

        for w in WEIGHTS:
            shown = f"query-side {top1(g + w * q_):.4f} · symmetric {top1(g + w * (q_ + c_) / 2):.4f}"
            print(f"{name} w={w:g}: {shown} · candidate-side {top1(g + w * c_):.4f}", flush=True)


if __name__ == "__main__":
    main()
