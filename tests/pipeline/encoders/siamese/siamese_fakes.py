"""A tiny CNN config, noise images and a model with its statistics moved off their defaults, for the siamese tests."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from pipeline.encoders.siamese.model import SiameseConfig, build_model

CNN = SiameseConfig(
    "cnn", 16, input_size=20, channels=1, width=4, blocks=(1, 1), mean=(0.8,), std=(0.3,), loss="contrastive"
)


def noise_images(n: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)) for _ in range(n)]


def trained_model(config: SiameseConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():  # move BatchNorm statistics and the scale off their defaults, as training would
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.uniform_(-0.1, 0.1)  # small: a large shift would zero every ReLU and make the output constant
            elif tensor.dtype.is_floating_point and ("running" in name or name == "scale"):
                tensor.uniform_(0.5, 1.5)
    return model.eval()
