"""How much `siamese:local@DIR` should weigh the cells, on the Omniglot development split (issue 4).

For each checkpoint runs/omniglot-dev/NAME (trained on small1 without Balinese by `omniglot_synthetic_dev.py`),
scores the 2,000 within-Balinese 20-way tasks that `benchmarks/omniglot_local_dev.sh` uses, with
cos(global) + w × (mean over the query's cells of the best cell cosine), each term floored at 0 as the encoder's
MaxSim does, for several w. Never the test alphabets. This chose `finetune.losses.LOCAL_LOSS_WEIGHT`.

    .venv/bin/python benchmarks/omniglot_local_weight_dev.py base base-e40 local
    .venv/bin/python benchmarks/omniglot_local_weight_dev.py crop-base crop-local   # checkpoints with --crop ink
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omniglot_dev import DATA, OUT

from pipeline.core.images import load_rgb
from pipeline.datasets.omniglot import load_omniglot
from pipeline.encoders.siamese.checkpoint import load_model
from pipeline.encoders.siamese.model import image_tensor, normalise_images

WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def features(directory: Path, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unit global (N, D) and unit cell (N, K, D) embeddings of the images, from the checkpoint's own model."""
    config, model = load_model(directory, torch.device("cpu"))
    images = torch.stack([image_tensor(load_rgb(p), config.input_size, config.channels, config.crop) for p in paths])
    with torch.inference_mode():
        global_, cells = model.local_features(normalise_images(images, config.mean, config.std))
    return global_.numpy(), cells.numpy()


@dataclass(frozen=True)
class TaskScores:
    """Per task (T, 20 candidates): the global cosine, the mean best cell cosine over the query's cells and over the
    candidate's cells (each floored at 0, as the encoder's MaxSim does), and the right answers (T,)."""

    global_: np.ndarray
    query_side: np.ndarray
    candidate_side: np.ndarray
    answers: np.ndarray

    def top1(self, scores: np.ndarray) -> float:
        """The share of tasks whose best-scored candidate is the answer."""
        return float(np.mean(scores.argmax(1) == self.answers))


def dev_task_scores(directory: Path) -> TaskScores:
    """Scores of the checkpoint at `directory` on the 2,000 within-Balinese 20-way development tasks."""
    tasks = load_omniglot(DATA / "images_background_small1").oneshot_tasks(20, 2000, 0, ["Balinese"])
    paths = sorted({q for t in tasks for q in (t.query, *t.gallery)})
    index = {q: i for i, q in enumerate(paths)}
    global_, cells = features(directory, paths)
    g_scores, query_side, candidate_side = [], [], []
    for t in tasks:
        query, gallery = index[t.query], [index[q] for q in t.gallery]
        g_scores.append(np.maximum(global_[gallery] @ global_[query], 0))
        sim = np.einsum("kd,gld->gkl", cells[query], cells[gallery])  # (20, K query cells, L candidate cells)
        query_side.append(np.maximum(sim.max(axis=2), 0).mean(axis=1))
        candidate_side.append(np.maximum(sim.max(axis=1), 0).mean(axis=1))
    answers = np.array([t.answer for t in tasks])
    return TaskScores(np.array(g_scores), np.array(query_side), np.array(candidate_side), answers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+")
    for name in p.parse_args().names:
        s = dev_task_scores(OUT / name)
        shown = " ".join(f"w={w:g}: {s.top1(s.global_ + w * s.query_side):.4f}" for w in WEIGHTS)
        print(f"{name}: global only {s.top1(s.global_):.4f} · {shown}", flush=True)


if __name__ == "__main__":
    main()
