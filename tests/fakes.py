"""Test doubles shared by the test packages: a tiny injected encoder and synthetic image folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.encoders.base import l2_normalise
from pipeline.records import EncodedBatch


class TinyEncoder:
    """8×8 thumbnail as a 192-d unit vector; images darker than `dark_below` count as 'no face'."""

    name = "tiny:thumb8"
    dim = 192
    distance = "cosine"

    def __init__(self, dark_below: float = -1.0, fail_on_call: int | None = None) -> None:
        self.dark_below = dark_below
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.embedded = 0

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32).ravel() / 255.0

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        raw = np.stack(list(items)).astype(np.float32)  # (N, 192)
        ok = raw.mean(axis=1) >= self.dark_below
        vectors = np.where(ok[:, None], l2_normalise(raw - 0.5), 0.0).astype(np.float32)
        self.embedded += len(items)
        return EncodedBatch(vectors, ok, tuple(None if k else "no face found" for k in ok))


def write_noise_images(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (32, 32)) -> list[Path]:
    """`n` distinct random PNGs named img_000.png …, labelled by sub-folder `class_<i % 3>`."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"class_{i % 3}" / f"img_{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
