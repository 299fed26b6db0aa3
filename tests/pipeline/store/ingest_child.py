"""A slow ingest in its own process, for the crash and concurrency tests: prints `acked <ids>` once each batch's
`merge_points` has returned (what the store has acknowledged), then `done`.

Usage: python ingest_child.py IMAGES STORE DELAY WORKERS — DELAY is seconds per batch, or `wait:PATH` to hold
every batch after the first until PATH exists (so a test can act while the store is certainly in use).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from fakes import TinyEncoder

from pipeline.core.config import IngestConfig
from pipeline.core.records import EncodedBatch
from pipeline.index.ingest import ingest
from pipeline.index.sources import list_source
from pipeline.store import Point, VectorStore
from pipeline.store.edge import EdgeBackend


class SlowEncoder(TinyEncoder):
    def __init__(self, delay: str) -> None:
        super().__init__()
        self.delay = delay

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        if self.delay.startswith("wait:"):
            while self.calls >= 1 and not Path(self.delay[5:]).exists():
                time.sleep(0.05)
        else:
            time.sleep(float(self.delay))
        return super().encode(items)


class AckingStore(VectorStore):
    def merge_points(self, collection: str, points: Sequence[Point]) -> None:
        super().merge_points(collection, points)
        print("acked", *(p.point_id for p in points), flush=True)


def main(images: str, store: str, delay: str, workers: str) -> None:
    config = IngestConfig("c", batch_size=4, workers=int(workers), progress=False)
    with AckingStore(EdgeBackend(Path(store))) as vs:
        ingest(list_source(Path(images)), SlowEncoder(delay), vs, config, torch.device("cpu"))
    print("done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
