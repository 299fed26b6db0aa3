"""Synthetic pen-stroke characters: shapes, seeding, rendering, and that drawings of one character agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finetune.strokes import StrokeSettings, invent_character, render, synthetic_characters


def test_shapes_labels_and_seeding() -> None:
    images, labels = synthetic_characters(StrokeSettings(classes=6, drawings=3, size=20, seed=4))
    assert images.shape == (18, 1, 20, 20) and images.dtype == torch.uint8
    assert labels.tolist() == [c for c in range(6) for _ in range(3)]
    again, _ = synthetic_characters(StrokeSettings(classes=6, drawings=3, size=20, seed=4))
    other, _ = synthetic_characters(StrokeSettings(classes=6, drawings=3, size=20, seed=5))
    assert torch.equal(images, again) and not torch.equal(images, other)


def test_render_inks_the_segment_and_nothing_far_from_it() -> None:
    across = torch.tensor([[[[0.1, 0.525], [0.9, 0.525]]]])  # one horizontal piece through row 10's centres
    thin, thick = render(across.expand(2, -1, -1, -1), torch.tensor([0.5, 2.0]), 20)
    assert thin[0, 10, 10] == 0 and thin[0, 2, 10] == 255 and thin[0, 10, 0] == 255  # on it; above it; past its end
    assert (thick < 128).sum() > (thin < 128).sum()  # a wider pen inks more pixels


def test_characters_fill_the_centre_of_the_square() -> None:
    for seed in range(20):
        strokes = invent_character(np.random.default_rng(seed))
        points = np.concatenate([s.reshape(-1, 2) for s in strokes])
        assert 1 <= len(strokes) <= 5
        assert np.abs(points.mean(axis=0) - 0.5).max() < 0.35  # centred (control points may overshoot the curve)


def test_drawings_of_a_character_are_closer_than_other_characters() -> None:
    images, labels = synthetic_characters(StrokeSettings(classes=12, drawings=4, size=28, seed=0))
    x = images.float().flatten(1) / 255.0
    distance = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~torch.eye(len(x), dtype=torch.bool)
    assert distance[same & off_diagonal].mean() < 0.8 * distance[~same].mean()
    ink = 1.0 - x.mean()
    assert 0.03 < ink < 0.25  # like Omniglot at 28 px: about a tenth of the page is ink


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="drawings"):
        StrokeSettings(classes=3, drawings=1)
