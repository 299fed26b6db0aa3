"""Omniglot CNN settings on a development split, never on the test alphabets (issue 4's configuration search).

Trains on `images_background_small1` without one alphabet (default Balinese) and scores 2,000 within-alphabet
20-way one-shot tasks on that alphabet; `--final` trains on all of small1 and scores 400 tasks on the small2-only
alphabets instead. One JSON line per run is printed and appended to runs/omniglot-dev/results.jsonl.

    .venv/bin/python benchmarks/omniglot_dev.py base                      # the defaults of `lookalike finetune`
    .venv/bin/python benchmarks/omniglot_dev.py grid3 --grid 3            # 3×3 pooled layout
    .venv/bin/python benchmarks/omniglot_dev.py s48b4 --size 48 --blocks 1,1,1,1
    .venv/bin/python benchmarks/omniglot_dev.py rot --rotate
    .venv/bin/python benchmarks/omniglot_dev.py m2 --m 2
    .venv/bin/python benchmarks/omniglot_dev.py supcon --loss supcon
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from finetune.augment import AugmentConfig
from finetune.config import CnnOptions, FinetuneConfig
from finetune.losses import LossConfig
from finetune.run import run_finetune
from finetune.train import TrainConfig
from pipeline.core.images import load_rgb
from pipeline.datasets.omniglot import OmniglotDataset, OneShotTask, load_omniglot
from pipeline.encoders.siamese.checkpoint import load_model
from pipeline.encoders.siamese.model import image_tensor, normalise_images

DATA = Path(os.environ.get("LOOKALIKE_OMNIGLOT", "../shared/datasets/omniglot")).resolve()
OUT = Path("runs/omniglot-dev")
TEST_ALPHABETS = ["Japanese_(katakana)", "Sanskrit", "Tagalog"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("--loss", default="triplet")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--blocks", default="1,1,1")
    p.add_argument("--grid", type=int, default=1)
    p.add_argument("--rotate", action="store_true")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--m", type=int, default=4)
    p.add_argument("--dev", default="Balinese")
    p.add_argument("--final", action="store_true")
    return p.parse_args()


def manifest_without(small1: OmniglotDataset, alphabet: str) -> Path:
    path = OUT / f"manifest-no-{alphabet}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group"])
        for c in small1.characters():
            if c.alphabet != alphabet:
                writer.writerows([path_, c.label, c.alphabet] for _, path_ in c.drawings)
    return path


def accuracy(model_dir: Path, tasks: list[OneShotTask]) -> float:
    config, model = load_model(model_dir, torch.device("cpu"))
    paths = sorted({p for t in tasks for p in (t.query, *t.gallery)})
    index = {p: i for i, p in enumerate(paths)}
    images = torch.stack([image_tensor(load_rgb(p), config.input_size, config.channels, config.crop) for p in paths])
    with torch.inference_mode():
        vectors = model(normalise_images(images, config.mean, config.std)).numpy()
    right = 0
    for t in tasks:
        gallery, query = vectors[[index[p] for p in t.gallery]], vectors[index[t.query]]
        scores = -np.abs(gallery - query).sum(1) if config.distance == "manhattan" else gallery @ query
        right += int(np.argmax(scores) == t.answer)
    return right / len(tasks)


def main() -> None:
    a = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    small1 = load_omniglot(DATA / "images_background_small1")
    if a.final:
        data, evalset = f"omniglot:{DATA}/images_background_small1", load_omniglot(DATA / "images_background_small2")
        tasks = evalset.oneshot_tasks(20, 400, 0, TEST_ALPHABETS)
    else:
        data = f"manifest:{manifest_without(small1, a.dev)}"
        tasks = small1.oneshot_tasks(20, 2000, 0, [a.dev])
    blocks = tuple(int(x) for x in a.blocks.split(","))
    cnn = CnnOptions(a.size, 1, a.width, blocks, rotate_classes=a.rotate, augment=AugmentConfig(), pool_grid=a.grid)
    out = OUT / a.name
    config = FinetuneConfig(
        data, out, "cnn", LossConfig(a.loss), TrainConfig(a.epochs, a.batch, a.m, patience=100, progress=False), cnn=cnn
    )
    start = time.time()
    result = run_finetune(config, torch.device("cpu"))
    target = "small2-only" if a.final else a.dev
    record(a, {"target": target, "accuracy": accuracy(out, tasks), "val_best": result.best_metric}, start)


def record(args: argparse.Namespace, measured: dict[str, object], start: float, file: str = "results.jsonl") -> None:
    """Print one JSON line for the run and append it to OUT/file."""
    row = {"name": args.name, "args": vars(args), **measured, "train_s": round(time.time() - start)}
    print(json.dumps(row))
    with (OUT / file).open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
