"""Perceptual hash (imagehash.phash) as a 0/1 vector, so Manhattan distance is Hamming distance.

Spec: `phash[:N][+mirror]`, N = hash_size (default 8 → 64 bits). No weights, no device.

`+mirror` makes the bits invariant to a left-right flip, still one N²-bit vector per image (so query, dedup and
eval work unchanged). A horizontal flip keeps every DCT coefficient with an even horizontal frequency and negates
every one with an odd horizontal frequency. So: even columns get phash's bit (coefficient above the median of the
even columns, which a flip does not change); odd columns get the coefficient's sign in a canonical orientation,
the one of {image, mirror} whose coefficient (0, 1) is larger — the one whose left half is brighter. An image and
its mirror are hashed as the same pair, so they give bit-identical vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import imagehash
import numpy as np
from PIL import Image, ImageOps
from scipy.fft import dct

from pipeline.core.errors import EncoderSpecError
from pipeline.core.records import Distance, EncodedBatch
from pipeline.encoders.base import EncoderOptions, EncoderSpec

if TYPE_CHECKING:
    import torch

DEFAULT_HASH_SIZE = 8
MIN_HASH_SIZE = 2  # imagehash.phash rejects smaller sizes
MAX_HASH_SIZE = 32  # 1024 bits; larger hashes only add high-frequency noise
HIGHFREQ_FACTOR = 4  # imagehash's default: the DCT runs on a (4N, 4N) thumbnail
MIRROR_OPTION = "mirror"
# Bump when the same phash:N would give other bits for an image (bit order, DCT or grayscale change); collections
# made with the old version then refuse this encoder instead of mixing the two layouts.
VERSION = "phash:1"
MIRROR_VERSION = "phash:1+mirror"  # the flip-invariant layout (other bits than plain phash); bump its number alone


class PHashEncoder:
    """DCT perceptual hash: near-duplicates (resized, recompressed) differ in a few bits; with `mirror`, mirrored
    copies too."""

    distance: Distance = "manhattan"
    model_free = True  # `encode` stacks the bits `prepare` computed

    def __init__(self, hash_size: int = DEFAULT_HASH_SIZE, mirror: bool = False) -> None:
        if not MIN_HASH_SIZE <= hash_size <= MAX_HASH_SIZE:
            raise EncoderSpecError(
                f"phash hash size {hash_size} is out of range; use phash:N with {MIN_HASH_SIZE} <= N <= {MAX_HASH_SIZE}"
            )
        self.hash_size = hash_size
        self.mirror = mirror
        self.name = f"phash:{hash_size}" + (f"+{MIRROR_OPTION}" if mirror else "")
        self.version = MIRROR_VERSION if mirror else VERSION
        self.dim = hash_size * hash_size

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> PHashEncoder:
        """Build from `phash`, `phash:N`, `phash+mirror` or `phash:N+mirror`; `device` and `options` do not apply.

        Raises:
            EncoderSpecError: N is not an integer in range, weights were given, or an option other than `+mirror`.
        """
        if spec.weights is not None:
            raise EncoderSpecError(f"phash has no weights; drop '@{spec.weights}' from {str(spec)!r} (e.g. 'phash:8')")
        if spec.options not in ((), (MIRROR_OPTION,)):
            raise EncoderSpecError(f"bad phash option(s) in {str(spec)!r}: the only one is '+{MIRROR_OPTION}'")
        mirror = spec.options == (MIRROR_OPTION,)
        if spec.arch is None:
            return cls(mirror=mirror)
        try:
            hash_size = int(spec.arch)
        except ValueError:
            raise EncoderSpecError(
                f"bad phash size {spec.arch!r} in {str(spec)!r}: expected an integer, e.g. 'phash:8'"
            ) from None
        return cls(hash_size, mirror)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The hash bits of one image, (dim,) float32 of 0/1 (both paths convert to grayscale themselves)."""
        if self.mirror:
            return mirror_invariant_bits(image, self.hash_size).astype(np.float32)
        bits = imagehash.phash(image, hash_size=self.hash_size).hash  # (N, N) bool
        return np.asarray(bits, dtype=np.float32).reshape(-1)

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        """Stack prepared bit vectors into (N, dim); every item is ok."""
        n = len(items)
        vectors = np.stack(list(items)).astype(np.float32) if n else np.zeros((0, self.dim), dtype=np.float32)
        return EncodedBatch(vectors=vectors, ok=np.ones(n, dtype=bool), notes=(None,) * n)


def mirror_invariant_bits(image: Image.Image, hash_size: int) -> np.ndarray:
    """(N²,) bool bits that an image and its left-right mirror share exactly (see the module docstring).

    Both orientations are hashed from PIL images (mirroring is exact), and the choice between them depends only
    on the pair, never on which of the two came in: bit-exact, even for near-symmetric images.
    """
    grey = image.convert("L")
    own, mirrored = _low_dct(grey, hash_size), _low_dct(ImageOps.mirror(grey), hash_size)  # (N, N) each
    own_bits, mirrored_bits = _oriented_bits(own), _oriented_bits(mirrored)
    if own[0, 1] != mirrored[0, 1]:
        return own_bits if own[0, 1] > mirrored[0, 1] else mirrored_bits
    # A tie (a symmetric image, up to rounding): the lexicographically smaller bit string, again order-free.
    return own_bits if own_bits.tobytes() <= mirrored_bits.tobytes() else mirrored_bits


def _low_dct(grey: Image.Image, hash_size: int) -> np.ndarray:
    """imagehash.phash's coefficients: the top-left (N, N) of the 2-D DCT-II of a (4N, 4N) LANCZOS thumbnail."""
    side = hash_size * HIGHFREQ_FACTOR
    pixels = np.asarray(grey.resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)  # (4N, 4N)
    return dct(dct(pixels, axis=0), axis=1)[:hash_size, :hash_size]  # (N, N): rows vertical, columns horizontal


def _oriented_bits(coefficients: np.ndarray) -> np.ndarray:
    """(N²,) bool, row-major: even columns above their median, odd columns (flip-negated) above zero."""
    odd = np.arange(coefficients.shape[1]) % 2 == 1  # (N,) columns with an odd horizontal frequency
    even = coefficients[:, ~odd]
    bits = coefficients > 0
    bits[:, ~odd] = even > np.median(even)
    return bits.reshape(-1)
