"""The real `lookalike` command line in its own process, for the signal tests, with a test encoder `slow:SECONDS`
(TinyEncoder that sleeps SECONDS per batch) and `acked <ids>` printed on stdout once the store has acknowledged each
batch's points.

Usage: python cli_child.py ingest FOLDER -c c -e slow:0.2 --store STORE … (any lookalike arguments)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
from fakes import TinyEncoder

from cli import main
from pipeline.core.records import EncodedBatch
from pipeline.encoders import EncoderOptions
from pipeline.encoders.base import EncoderSpec
from pipeline.encoders.registry import EncoderInfo, register_encoder
from pipeline.store import Point, VectorStore


class SlowEncoder(TinyEncoder):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        time.sleep(self.delay)
        return super().encode(items)


def _slow(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> SlowEncoder:
    return SlowEncoder(float(spec.arch or 0.2))


def _acking(merge: object) -> object:
    def merge_points(self: VectorStore, collection: str, points: Sequence[Point]) -> None:
        merge(self, collection, points)  # type: ignore[operator]
        print("acked", *(p.point_id for p in points), flush=True)

    return merge_points


if __name__ == "__main__":
    register_encoder(EncoderInfo("slow", "slow:0.2", "test: tiny thumbnails, slowly", "yes"), _slow)
    VectorStore.merge_points = _acking(VectorStore.merge_points)  # type: ignore[method-assign]
    sys.argv[0] = "lookalike"
    main()
