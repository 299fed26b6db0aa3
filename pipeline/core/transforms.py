"""Image edits that make copies: crop, resize, JPEG, flip, rotate, colour, greyscale, border, text, and combinations.

Used to generate copy-detection benchmarks (`pipeline.bench.copies`) and self-supervised training views
(`finetune.copies`).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]
_WORDS = ("copy", "sale", "meme", "lol", "2024", "news", "wow", "@user", "viral", "repost", "© stock", "HD")


def crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Keep 50–85 % of each side, at a random place."""
    w, h = image.size
    cw, ch = (max(8, int(s * rng.uniform(0.5, 0.85))) for s in (w, h))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return image.crop((x, y, x + cw, y + ch))


def resize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Scale by 0.3–0.7 (or up by 1.3–1.8 one time in four), aspect ratio kept."""
    scale = rng.uniform(1.3, 1.8) if rng.random() < 0.25 else rng.uniform(0.3, 0.7)
    w, h = image.size
    return image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)


def jpeg(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Re-compress as JPEG at quality 8–30."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(8, 31)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def flip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Mirror left–right."""
    return ImageOps.mirror(image)


def rotate(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate 3–15° either way; the corners are filled black."""
    angle = float(rng.uniform(3, 15) * rng.choice([-1, 1]))
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Change brightness (0.6–1.4), saturation (0.3–1.7) and contrast (0.7–1.3)."""
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.3, 1.7))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))


def greyscale(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Drop colour."""
    return ImageOps.grayscale(image).convert("RGB")


def border(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Pad 5–20 % of the short side on every side with one random colour."""
    pad = max(1, int(min(image.size) * rng.uniform(0.05, 0.2)))
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    return ImageOps.expand(image, border=pad, fill=fill)


def text(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Overlay one to three words in a random colour and place, about 1/8 of the height tall."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    words = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4))))
    font = ImageFont.load_default(size=max(8, out.height // 8))
    x, y = int(rng.integers(0, max(1, out.width // 2))), int(rng.integers(0, max(1, out.height * 3 // 4)))
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    outline = tuple(255 - v for v in fill)  # the inverse colour keeps the words legible on any background
    draw.text((x, y), words, fill=fill, font=font, stroke_width=max(1, out.height // 80), stroke_fill=outline)
    return out


BASE_TRANSFORMS: dict[str, Transform] = {
    "crop": crop,
    "resize": resize,
    "jpeg": jpeg,
    "flip": flip,
    "rotate": rotate,
    "colour": colour,
    "greyscale": greyscale,
    "border": border,
    "text": text,
}
TRANSFORM_NAMES = (*BASE_TRANSFORMS, "combo")  # copy j of an original uses TRANSFORM_NAMES[j % 10]


def apply_transform(name: str, image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Apply one named transform; "combo" chains 2–3 distinct base transforms and names them ("crop+text").

    Raises:
        ValueError: unknown name.
    """
    if name == "combo":
        names = [str(n) for n in rng.choice(list(BASE_TRANSFORMS), size=int(rng.integers(2, 4)), replace=False)]
        for n in names:
            image = BASE_TRANSFORMS[n](image, rng)
        return image, "+".join(names)
    if name not in BASE_TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {', '.join(TRANSFORM_NAMES)}")
    return BASE_TRANSFORMS[name](image, rng), name
