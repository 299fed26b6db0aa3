"""Test doubles shared by the test packages: a tiny injected encoder and synthetic image folders."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.records import EncodedBatch
from pipeline.encoders.base import l2_normalise


class TinyEncoder:
    """8×8 thumbnail as a 192-d unit vector; images darker than `dark_below` count as 'no face'."""

    name = "tiny:thumb8"
    dim = 192
    distance = "cosine"
    version = "tiny:1"

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


class GreyEncoder:
    """4×4 greyscale thumbnail as a 16-d unit vector: a second fake with its own name and size.

    Images brighter than `bright_above` (mean in [0, 1]) count as 'no face', so that with TinyEncoder's
    `dark_below` two encoders can miss different images.
    """

    name = "grey:4"
    dim = 16
    distance = "cosine"
    version = "grey:1"

    def __init__(self, bright_above: float = 2.0) -> None:
        self.bright_above = bright_above
        self.embedded = 0

    def prepare(self, image: Image.Image) -> np.ndarray:
        grey = image.convert("L").resize((4, 4), Image.Resampling.BILINEAR)
        return np.asarray(grey, dtype=np.float32).ravel() / 255.0

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        raw = np.stack(list(items)).astype(np.float32)  # (N, 16)
        ok = raw.mean(axis=1) <= self.bright_above
        vectors = np.where(ok[:, None], l2_normalise(raw - raw.mean(axis=1, keepdims=True)), 0.0).astype(np.float32)
        self.embedded += len(items)
        return EncodedBatch(vectors, ok, tuple(None if k else "no face found" for k in ok))


def write_planted_folder(root: Path) -> dict[str, Path]:
    """Six distinct smooth images `img0..img5.png`, a half-size JPEG of img0 (`near`: sub/img0_small.jpg) and a byte
    copy of img1 (`exact`: sub/img1_copy.png): two duplicate groups for dedup, serve and their tests."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    paths = {}
    for i in range(6):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        paths[f"img{i}"] = root / f"img{i}.png"
        small.resize((128, 96), Image.Resampling.BICUBIC).save(paths[f"img{i}"])
    paths["near"] = root / "sub" / "img0_small.jpg"
    paths["near"].parent.mkdir()
    Image.open(paths["img0"]).resize((64, 48)).save(paths["near"], quality=85)
    paths["exact"] = root / "sub" / "img1_copy.png"
    shutil.copyfile(paths["img1"], paths["exact"])
    return paths


def smooth_image(rng: np.random.Generator, size: int = 32, level: tuple[int, int] = (0, 256)) -> Image.Image:
    """A random 4×4 colour grid upscaled to size×size: survives JPEG and small noise (unlike pixel noise)."""
    grid = rng.integers(level[0], level[1], (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)


def noisy_copy(image: Image.Image, rng: np.random.Generator, amount: int = 10) -> Image.Image:
    """The image with uniform pixel noise in [-amount, amount]."""
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.integers(-amount, amount + 1, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def write_tll(root: Path, n_train: int = 20, n_test: int = 4, n_candidates: int = 3, seed: int = 0) -> list[int]:
    """A COMP90086 layout in which every right image is a noisy copy of its left (so encoders can match).

    train.csv has `n_train` pairs (l000 → r000 …); test_candidates.csv has `n_test` rows (q000 …) whose true
    right sits at column row % n_candidates among fresh foils; sample-submission.csv lists the same rows.

    Returns:
        The column of the true candidate in each test row.
    """
    rng = np.random.default_rng(seed)

    def save(image: Image.Image, *parts: str) -> None:
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=95)

    lines = ["left,right"]
    for i in range(n_train):
        left = smooth_image(rng)
        save(left, "train", "left", f"l{i:03d}.jpg")
        save(noisy_copy(left, rng), "train", "right", f"r{i:03d}.jpg")
        lines.append(f"l{i:03d},r{i:03d}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    header = ",".join(["left", *(f"c{j}" for j in range(n_candidates))])
    rows, sample, answers = [header], [header], []
    for q in range(n_test):
        left = smooth_image(rng)
        save(left, "test", "left", f"q{q:03d}.jpg")
        answer = q % n_candidates
        ids = [f"t{q:03d}x{j}" for j in range(n_candidates)]
        for j, image_id in enumerate(ids):
            save(noisy_copy(left, rng) if j == answer else smooth_image(rng), "test", "right", f"{image_id}.jpg")
        rows.append(",".join([f"q{q:03d}", *ids]))
        sample.append(",".join([f"q{q:03d}", *(f"{v:.6f}" for v in rng.random(n_candidates))]))
        answers.append(answer)
    (root / "test_candidates.csv").write_text("\n".join(rows) + "\n")
    (root / "sample-submission.csv").write_text("\n".join(sample) + "\n")
    return answers


def noise_image(seed: int, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """Seeded RGB noise of (width, height) `size`: each seed gives a visually distinct image."""
    width, height = size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def encode_image(image: Image.Image, fmt: str, **params: object) -> bytes:
    """The bytes Pillow writes for `image` in `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height but whose pixel data stops after a few rows.

    Decoding it would fail as truncated, so a "too large" reason proves the header was checked first.
    """

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    pixels = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
