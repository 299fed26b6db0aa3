"""Seeded synthetic images for finetune tests: stroke "characters" (a class-specific angle) and unlabelled "photos"."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

N_CLASSES = 6
PER_CLASS = 5


def stroke_image(angle: float, rng: np.random.Generator, size: int = 24) -> Image.Image:
    """A dark stroke through the centre at `angle` (jittered) on white, with a class-coloured tint: a 'character'."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    a = angle + rng.normal(0, 0.08)
    dx, dy = math.cos(a) * size * 0.4, math.sin(a) * size * 0.4
    centre = size / 2 + rng.normal(0, 0.7, 2)
    shade = (int(200 * abs(math.cos(angle))), 40, int(200 * abs(math.sin(angle))))
    draw.line([(centre[0] - dx, centre[1] - dy), (centre[0] + dx, centre[1] + dy)], fill=shade, width=max(2, size // 8))
    for x, y in rng.integers(0, size, (3, 2)):  # faint specks: no two images have the same bytes
        draw.point((int(x), int(y)), fill=tuple(int(v) for v in rng.integers(200, 250, 3)))
    return image


def write_class_folder(root: Path, n_classes: int = N_CLASSES, per_class: int = PER_CLASS, seed: int = 0) -> Path:
    """`root/class_<k>/<i>.png`: class k is a stroke at angle k·π/n_classes."""
    rng = np.random.default_rng(seed)
    for k in range(n_classes):
        for i in range(per_class):
            path = root / f"class_{k}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            stroke_image(k * math.pi / n_classes, rng).save(path)
    return root


def write_photo_folder(root: Path, n: int, seed: int = 0, size: tuple[int, int] = (40, 32)) -> list[Path]:
    """`n` seeded 'photos' (a random 4×3 colour layout, smoothly upscaled) as `root/img_<i>.png`, no labels:
    distinct enough that each stays recognisable under copy edits, unlike pixel noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        layout = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
        path = root / f"img_{i:03d}.png"
        layout.resize(size, Image.Resampling.BILINEAR).save(path)
        paths.append(path)
    return paths
