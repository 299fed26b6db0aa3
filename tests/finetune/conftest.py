"""Finetune fixtures: a class folder, a TLL layout and a `tiny` encoder family (TinyEncoder)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TinyEncoder
from finetune_fakes import stroke_image, write_class_folder

from pipeline.encoders.base import EncoderOptions, EncoderSpec
from pipeline.encoders.registry import EncoderInfo, list_encoders, register_encoder


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    return write_class_folder(tmp_path / "classes")


@pytest.fixture
def tll_root(tmp_path: Path) -> Path:
    """A COMP90086 layout with 30 training pairs (left and right of a pair: the same stroke angle)."""
    root = tmp_path / "tll"
    rng = np.random.default_rng(1)
    rows = ["left,right"]
    for i in range(30):
        angle = i * math.pi / 30
        for side, image_id in (("left", f"l{i:02d}"), ("right", f"r{i:02d}")):
            path = root / "train" / side / f"{image_id}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            stroke_image(angle, rng).save(path)
        rows.append(f"l{i:02d},r{i:02d}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "test_candidates.csv").write_text("left,c0\n")
    for side in ("left", "right"):
        (root / "test" / side).mkdir(parents=True)
    return root


def _tiny_factory(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> TinyEncoder:
    return TinyEncoder()


@pytest.fixture(scope="session", autouse=True)
def tiny_family() -> None:
    """Register `tiny` (TinyEncoder) once, so a head checkpoint over it loads through create_encoder."""
    if "tiny" not in {info.family for info in list_encoders()}:
        register_encoder(EncoderInfo("tiny", "tiny:thumb8", "test double: 8×8 thumbnail", "yes"), _tiny_factory)
