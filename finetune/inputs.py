"""Model inputs for training: backbone vectors through the production ingest path (head), or decoded images (cnn).

Head mode never runs the backbone itself: the images are ingested into a Qdrant collection with the backbone encoder
(`pipeline.index.collection.IndexedCollection`) and the stored vectors fetched by point id. That collection is the
on-disk cache, keyed by encoder (the named vector) and content hash (the point id): a second run, or a run after
`lookalike eval` on the same dataset, embeds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import load_rgb
from pipeline.core.records import ImageRecord
from pipeline.encoders.siamese.model import Crop, image_tensor
from pipeline.index.collection import IndexedCollection


@dataclass(frozen=True)
class InputBank:
    """One model input per path: (N, D) float32 backbone vectors or (N, C, S, S) uint8 images.

    Attributes:
        paths: the image paths, aligned with `inputs`.
        inputs: zeros where `ok` is False.
        ok: (N,) bool, False where the image could not be decoded or the backbone gave no vector (no face).
    """

    paths: tuple[str, ...]
    inputs: torch.Tensor
    ok: np.ndarray

    def rows(self, paths: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
        """Inputs and ok flags for these paths (each must be in the bank)."""
        index = {p: i for i, p in enumerate(self.paths)}
        picked = [index[p] for p in paths]
        return self.inputs[picked], self.ok[picked]


def backbone_vectors(paths: Sequence[str], index: IndexedCollection) -> InputBank:
    """Ingest `paths` with the backbone encoder of `index` (idempotent), then fetch their vectors."""
    summary = index.ensure([ImageRecord(p) for p in paths])
    ids = [summary.point_ids.get(p) for p in paths]
    found = index.vectors([i for i in ids if i])
    ok = np.array([i is not None and i in found for i in ids], dtype=bool)
    vectors = np.zeros((len(paths), index.encoders[0].dim), dtype=np.float32)
    if ok.any():
        vectors[ok] = np.stack([found[i] for i in ids if i is not None and i in found])
    return InputBank(tuple(paths), torch.from_numpy(vectors), ok)


def decode_images(
    paths: Sequence[str], size: int, channels: int, threads: int = 4, progress: bool = True, crop: Crop = Crop.NONE
) -> InputBank:
    """Decode every image once (safe decode, threads) into a uint8 (N, C, size, size) tensor (`image_tensor`)."""

    def one(path: str) -> torch.Tensor | None:
        try:
            return image_tensor(load_rgb(path), size, channels, crop)
        except ImageDecodeError:
            return None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(tqdm(pool.map(one, paths), total=len(paths), desc="decoding", unit="img", disable=not progress))
    images = torch.zeros(len(paths), channels, size, size, dtype=torch.uint8)
    for i, result in enumerate(results):
        if result is not None:
            images[i] = result
    ok = np.array([r is not None for r in results], dtype=bool)
    return InputBank(tuple(paths), images, ok)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images scaled to [0, 1] (std floored at 1e-3)."""
    pixels = images.float().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)  # (C, N·H·W)
    mean = pixels.mean(dim=1)
    std = pixels.std(dim=1).clamp_min(1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
