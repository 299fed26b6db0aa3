"""How strong the hubness correction (`--hubness`, `pipeline.search.hubness`) should be, on the Omniglot development
split.

For each checkpoint runs/omniglot-dev/NAME (trained on small1 without Balinese by `omniglot_synthetic_dev.py`),
embeds the images of the 2,000 within-Balinese 20-way tasks with the `siamese:local@DIR` encoder (the product
path), scores each task by MaxSim as Qdrant does, then lowers each candidate's score by β × its mean similarity to
the task's other candidates (`pipeline.search.hubness`, gallery only: no other query, no label) for several β, and
prints top-1 per β for each checkpoint and for all of them fused (z-scored over the tasks, as `eval oneshot` fuses).
Never the test alphabets.

    .venv/bin/python benchmarks/omniglot_hubness_dev.py crop-local crop-base local --local-weight 3

`--local-weight` replaces the cell weight the checkpoints record (the development checkpoints record 1; the
supcon-local checkpoints that `finetune` writes record 3).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch
from omniglot_dev import DATA, OUT

from pipeline.core.images import load_rgb
from pipeline.datasets.omniglot import load_omniglot
from pipeline.encoders.registry import create_encoder
from pipeline.search.hubness import correct_hubness, mean_candidate_similarity
from pipeline.store.scoring import maxsim

BETAS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5)


def task_scores(name: str, tasks: list, paths: list[str], weight: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(T, 20) MaxSim scores of each task's query to its gallery, and (T, 20) each candidate's mean similarity to
    the other candidates, for the checkpoint runs/omniglot-dev/NAME read as `siamese:local@DIR`."""
    encoder = create_encoder(f"siamese:local@{OUT / name}", torch.device("cpu"))
    if weight is not None:
        encoder.config = replace(encoder.config, local_weight=weight)  # type: ignore[attr-defined]
    batch = encoder.encode([encoder.prepare(load_rgb(p)) for p in paths])
    vectors = dict(zip(paths, batch.vectors, strict=True))
    scores = np.stack([maxsim(vectors[t.query][None], np.stack([vectors[g] for g in t.gallery]))[0] for t in tasks])
    return scores, mean_candidate_similarity(vectors, [list(t.gallery) for t in tasks], "dot")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+")
    p.add_argument("--local-weight", type=float, help="cell weight instead of the checkpoint's own")
    args = p.parse_args()
    names = args.names
    tasks = load_omniglot(DATA / "images_background_small1").oneshot_tasks(20, 2000, 0, ["Balinese"])
    paths = sorted({q for t in tasks for q in (t.query, *t.gallery)})
    answers = np.array([t.answer for t in tasks])
    scored = {name: task_scores(name, tasks, paths, args.local_weight) for name in names}
    for beta in BETAS:
        corrected = {n: correct_hubness(s, m, beta) for n, (s, m) in scored.items()}
        fused = sum((c - c.mean()) / c.std() for c in corrected.values())
        shown = " · ".join(f"{n} {np.mean(c.argmax(1) == answers):.4f}" for n, c in corrected.items())
        print(f"β={beta:g}: {shown} · fused {np.mean(np.asarray(fused).argmax(1) == answers):.4f}", flush=True)


if __name__ == "__main__":
    main()
