"""phash encoder: bits, Hamming distance as Manhattan distance, near-duplicate robustness, spec grammar."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.core.errors import EncoderSpecError
from pipeline.encoders import create_encoder
from pipeline.encoders.phash import PHashEncoder


def scene(seed: int, size: int = 256) -> Image.Image:
    """A smooth seeded picture (sinusoid background + ellipses); phash is meant for such images, not noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.zeros((size, size, 3))
    for channel in range(3):
        fx, fy, phase = rng.uniform(0.5, 3, 3)
        pixels[..., channel] = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + 3 * phase)
    image = Image.fromarray((pixels * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size - 56, 2))
        w, h = (int(v) for v in rng.integers(20, 80, 2))
        draw.ellipse([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def recompressed(image: Image.Image, size: int = 180, quality: int = 60) -> Image.Image:
    buffer = io.BytesIO()
    image.resize((size, size), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).sum())  # Manhattan distance between 0/1 vectors


def test_default_spec_is_64_bits_manhattan() -> None:
    encoder = create_encoder("phash")
    assert (encoder.name, encoder.dim, encoder.distance, encoder.version) == ("phash:8", 64, "manhattan", "phash:1")
    assert create_encoder(encoder.name).name == encoder.name


def test_hash_size_sets_dim() -> None:
    encoder = create_encoder("phash:16")
    assert (encoder.name, encoder.dim) == ("phash:16", 256)
    assert encoder.prepare(scene(0)).shape == (256,)


def test_bits_are_float32_zero_one_and_always_ok() -> None:
    encoder = create_encoder("phash")
    batch = encoder.encode([encoder.prepare(scene(seed)) for seed in range(3)])
    assert batch.vectors.shape == (3, 64) and batch.vectors.dtype == np.float32
    assert set(np.unique(batch.vectors)) <= {0.0, 1.0}
    assert batch.ok.all() and batch.notes == (None, None, None)


def test_identical_images_give_identical_bits() -> None:
    encoder = create_encoder("phash")
    assert np.array_equal(encoder.prepare(scene(0)), encoder.prepare(scene(0).copy()))


def test_manhattan_distance_equals_imagehash_hamming() -> None:
    # Oracle: imagehash's own `h1 - h2` is the Hamming distance.
    encoder = create_encoder("phash")
    a, b = scene(0), scene(1)
    expected = imagehash.phash(a) - imagehash.phash(b)
    assert hamming(encoder.prepare(a), encoder.prepare(b)) == expected


def test_resized_recompressed_copy_is_near_and_other_images_far() -> None:
    encoder = create_encoder("phash")
    original = encoder.prepare(scene(0))
    assert hamming(original, encoder.prepare(recompressed(scene(0)))) <= 4
    assert min(hamming(original, encoder.prepare(scene(seed))) for seed in range(1, 6)) >= 16


def test_greyscale_and_rgba_inputs_are_accepted() -> None:
    encoder = create_encoder("phash")
    rgb = encoder.prepare(scene(0))
    assert hamming(rgb, encoder.prepare(scene(0).convert("L"))) <= 2
    assert hamming(rgb, encoder.prepare(scene(0).convert("RGBA"))) == 0


def test_empty_batch() -> None:
    batch = create_encoder("phash").encode([])
    assert batch.vectors.shape == (0, 64) and batch.ok.shape == (0,)


@pytest.mark.parametrize("spec", ["phash:x", "phash:1", "phash:33", "phash@weights", "phash:8@none"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match="phash"):
        create_encoder(spec)


def test_direct_construction_checks_range() -> None:
    with pytest.raises(EncoderSpecError, match="out of range"):
        PHashEncoder(0)
