"""Perceptual hash (imagehash.phash) as a 0/1 vector, so Manhattan distance is Hamming distance.

Spec: `phash[:N]`, N = hash_size (default 8 → 64 bits). No weights, no device.
"""

from __future__ import annotations

from collections.abc import Sequence

import imagehash
import numpy as np
import torch
from PIL import Image

from pipeline.core.errors import EncoderSpecError
from pipeline.core.records import Distance, EncodedBatch
from pipeline.encoders.base import EncoderOptions, EncoderSpec

DEFAULT_HASH_SIZE = 8
MIN_HASH_SIZE = 2  # imagehash.phash rejects smaller sizes
MAX_HASH_SIZE = 32  # 1024 bits; larger hashes only add high-frequency noise
# Bump when the same phash:N would give other bits for an image (bit order, DCT or grayscale change); collections
# made with the old version then refuse this encoder instead of mixing the two layouts.
VERSION = "phash:1"


class PHashEncoder:
    """DCT perceptual hash: near-duplicates (resized, recompressed) differ in a few bits."""

    distance: Distance = "manhattan"
    version = VERSION

    def __init__(self, hash_size: int = DEFAULT_HASH_SIZE) -> None:
        if not MIN_HASH_SIZE <= hash_size <= MAX_HASH_SIZE:
            raise EncoderSpecError(
                f"phash hash size {hash_size} is out of range; use phash:N with {MIN_HASH_SIZE} <= N <= {MAX_HASH_SIZE}"
            )
        self.hash_size = hash_size
        self.name = f"phash:{hash_size}"
        self.dim = hash_size * hash_size

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> PHashEncoder:
        """Build from `phash` or `phash:N`; `device` and `options` do not apply.

        Raises:
            EncoderSpecError: N is not an integer in range, or weights were given.
        """
        if spec.weights is not None:
            raise EncoderSpecError(f"phash has no weights; drop '@{spec.weights}' from {str(spec)!r} (e.g. 'phash:8')")
        if spec.arch is None:
            return cls()
        try:
            hash_size = int(spec.arch)
        except ValueError:
            raise EncoderSpecError(
                f"bad phash size {spec.arch!r} in {str(spec)!r}: expected an integer, e.g. 'phash:8'"
            ) from None
        return cls(hash_size)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The hash bits of one image, (dim,) float32 of 0/1 (imagehash converts to grayscale itself)."""
        bits = imagehash.phash(image, hash_size=self.hash_size).hash  # (N, N) bool
        return np.asarray(bits, dtype=np.float32).reshape(-1)

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        """Stack prepared bit vectors into (N, dim); every item is ok."""
        n = len(items)
        vectors = np.stack(list(items)).astype(np.float32) if n else np.zeros((0, self.dim), dtype=np.float32)
        return EncodedBatch(vectors=vectors, ok=np.ones(n, dtype=bool), notes=(None,) * n)
