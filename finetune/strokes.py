"""Synthetic pen-stroke characters: extra classes for training a character encoder on a small background set.

Omniglot's small background sets hold 136–156 characters; a CNN trained on them learns the gross shape of a
character but not the fine within-alphabet distinctions (a stroke's angle, whether two strokes meet). Drawn
characters are cheap to invent: a *character* here is 1–5 strokes, each a chain of one to three line or quadratic
Bézier segments, often starting on an earlier stroke (a junction), then scaled and centred in the square. A
*drawing* of it moves every control point by Gaussian noise (one drawer's hand) and draws it with its own pen
width. The batch augmentation (affine + elastic) varies drawings further, as it does real ones.

Rendering is vectorised: each curve is cut into short straight pieces, and a pixel's ink is a soft step on its
distance to the nearest piece (one pixel of antialiasing), so strokes look like Omniglot's 105 px drawings shrunk to the
input side: grey-edged lines on a white page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

SAMPLES_PER_SEGMENT = 12  # points along each Bézier curve; straight pieces join them
MAX_STROKES = 5
STROKE_COUNTS = (0.1, 0.25, 0.3, 0.2, 0.15)  # how often a character has 1, 2, … strokes
MAX_SEGMENTS = 3  # per stroke
SEGMENT_COUNTS = (0.4, 0.4, 0.2)


@dataclass(frozen=True)
class StrokeSettings:
    """How synthetic characters are invented and drawn.

    Attributes:
        classes: characters to invent.
        drawings: drawings of each (Omniglot has 20 drawers per character).
        size: image side in pixels.
        seed: the characters and drawings are a function of the seed.
        jitter: a drawer's control-point noise (standard deviation, fraction of the side).
        pen: (min, max) pen half-width in pixels at 105 px (Omniglot's side), scaled to `size`.
    """

    classes: int
    drawings: int = 20
    size: int = 28
    seed: int = 0
    jitter: float = 0.04
    pen: tuple[float, float] = (2.0, 3.5)

    def __post_init__(self) -> None:
        if self.classes < 1 or self.drawings < 2:
            raise ValueError(f"need classes >= 1 and drawings >= 2, got {self.classes} and {self.drawings}")


def invent_character(rng: np.random.Generator) -> list[np.ndarray]:
    """One character: a list of strokes, each a (segments, 3, 2) array of quadratic Bézier control points in [0, 1]².

    A line segment is a quadratic whose middle control point is the midpoint of its ends.
    """
    strokes: list[np.ndarray] = []
    for _ in range(int(rng.choice(np.arange(1, MAX_STROKES + 1), p=STROKE_COUNTS))):
        start = _start_point(strokes, rng)
        segments = []
        for _ in range(int(rng.choice(np.arange(1, MAX_SEGMENTS + 1), p=SEGMENT_COUNTS))):
            end = _step(start, rng)
            bend = rng.normal(0.0, 0.35) if rng.random() < 0.7 else 0.0
            middle = (start + end) / 2 + bend * np.array([-(end - start)[1], (end - start)[0]])
            segments.append(np.stack([start, middle, end]))
            start = end
        strokes.append(np.stack(segments))
    return _fitted(strokes, rng)


def _fitted(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Scale and centre a character so its longer side spans 0.6–0.8 of the square (Omniglot's are centred)."""
    points = np.concatenate([_bezier(seg, np.linspace(0, 1, 9)) for stroke in strokes for seg in stroke])
    low, high = points.min(axis=0), points.max(axis=0)
    scale = rng.uniform(0.6, 0.8) / max(float((high - low).max()), 1e-6)
    return [(stroke - (low + high) / 2) * scale + 0.5 for stroke in strokes]


def _start_point(strokes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """On an earlier stroke half the time (a junction), anywhere in the central square otherwise."""
    if strokes and rng.random() < 0.5:
        segment = strokes[int(rng.integers(len(strokes)))][0]
        return _bezier(segment, np.array([rng.random()]))[0]
    return rng.uniform(0.15, 0.85, size=2)


def _step(start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An end point 0.2–0.6 of the side away in a random direction, kept inside the central square."""
    angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6)
    return np.clip(start + length * np.array([np.cos(angle), np.sin(angle)]), 0.1, 0.9)


def _bezier(control: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of a quadratic Bézier (3, 2) at parameters t (T,) → (T, 2)."""
    t = t[:, None]
    return (1 - t) ** 2 * control[0] + 2 * (1 - t) * t * control[1] + t**2 * control[2]


def drawing_segments(character: list[np.ndarray], jitter: float, rng: np.random.Generator) -> np.ndarray:
    """One drawer's pen path: every control point moved by N(0, jitter), each curve cut into straight pieces →
    (L, 2, 2) line segments (start, end) in [0, 1]²."""
    t = np.linspace(0.0, 1.0, SAMPLES_PER_SEGMENT)
    pieces = []
    for stroke in character:
        moved = stroke + rng.normal(0.0, jitter, size=stroke.shape)
        moved[1:, 0] = moved[:-1, 2]  # a stroke's segments stay joined
        path = np.concatenate([_bezier(segment, t) for segment in moved])
        pieces.append(np.stack([path[:-1], path[1:]], axis=1))
    return np.concatenate(pieces)


def render(segments: torch.Tensor, pen: torch.Tensor, size: int) -> torch.Tensor:
    """Draw line segments: (B, L, 2, 2) in [0, 1]² and (B,) pen half-widths in pixels → (B, 1, size, size) uint8,
    white page (255) and dark ink (0), antialiased over one pixel."""
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1).view(1, -1, 1, 2)  # (1, S², 1, 2)
    start, direction = segments[:, None, :, 0], (segments[:, :, 1] - segments[:, :, 0])[:, None]  # (B, 1, L, 2)
    length2 = (direction**2).sum(-1).clamp_min(1e-12)
    t = (((grid - start) * direction).sum(-1) / length2).clamp(0.0, 1.0)  # (B, S², L) nearest point's parameter
    distance = (grid - start - t[..., None] * direction).norm(dim=-1).amin(dim=2) * size  # (B, S²) in pixels
    ink = (pen[:, None] + 0.5 - distance).clamp(0.0, 1.0)
    return ((1.0 - ink) * 255).round().to(torch.uint8).view(-1, 1, size, size)


def synthetic_characters(settings: StrokeSettings, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """`settings.classes` invented characters × `settings.drawings` drawings each (a progress bar if asked).

    Returns:
        images: (classes · drawings, 1, size, size) uint8.
        labels: (classes · drawings,) int64, the character index of each drawing.
    """
    rng = np.random.default_rng(settings.seed)
    low, high = (p * settings.size / 105 for p in settings.pen)
    images = []
    for _ in tqdm(range(settings.classes), desc="drawing characters", unit="class", disable=not progress):
        character = invent_character(rng)
        drawings = [drawing_segments(character, settings.jitter, rng) for _ in range(settings.drawings)]
        padded = np.stack(drawings)  # every drawing of a character has the same number of pieces
        pen = torch.from_numpy(rng.uniform(low, high, size=settings.drawings)).float()
        images.append(render(torch.from_numpy(padded).float(), pen, settings.size))
    labels = torch.arange(settings.classes, dtype=torch.int64).repeat_interleave(settings.drawings)
    return torch.cat(images), labels
