"""Batched affine (+ flip) + elastic augmentation, one `grid_sample` per batch on the training device.

torchvision's v2 `RandomAffine` and `ElasticTransform` draw one set of parameters per call, so per-sample
augmentation means one call per image: ~1.3 ms each on a CPU core at 28 px (the elastic field's blur dominates),
about 15 s per Omniglot epoch — more than the forward and backward passes. Here every sample still gets its own
affine matrix and its own elastic field (Simard et al. 2003: uniform noise, Gaussian-blurred, scaled by alpha), but
the whole batch is warped in one call: milliseconds per batch, and it runs on the GPU when training does.

Two presets: `AugmentConfig()` for handwritten characters (affine + elastic), `COPY_AUGMENT` for copy detection
(a left–right flip half the time and a light affine, no elastic: photos are not pen strokes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

REFERENCE_SIZE = 28  # elastic alpha and sigma are given in pixels at this input size (Simard et al.'s MNIST)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strength; each sample draws uniformly within these ranges.

    Attributes:
        degrees: rotation range ±degrees.
        shear: horizontal shear range ±degrees.
        scale: (min, max) zoom factor.
        translate: shift range ± this fraction of the image side.
        elastic_alpha, elastic_sigma: elastic field magnitude and smoothness in pixels at 28 px (scaled to the
            input size); alpha 0 turns the elastic part off.
        elastic_p: fraction of samples that get an elastic field.
        flip_p: fraction of samples mirrored left–right.
    """

    degrees: float = 10.0
    shear: float = 10.0
    scale: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.1
    elastic_alpha: float = 34.0
    elastic_sigma: float = 4.0
    elastic_p: float = 0.5
    flip_p: float = 0.0


COPY_AUGMENT = AugmentConfig(
    degrees=5.0, shear=0.0, scale=(0.9, 1.1), translate=0.05, elastic_alpha=0.0, elastic_p=0.0, flip_p=0.5
)


class CharacterAugment(nn.Module):
    """Per-sample random affine (+ flip) + elastic warp of a float (B, C, S, S) batch; outside pixels repeat the
    border."""

    kernel: torch.Tensor

    def __init__(self, config: AugmentConfig, size: int) -> None:
        super().__init__()
        self.config = config
        factor = size / REFERENCE_SIZE
        self.alpha = config.elastic_alpha * factor
        self.sigma = max(config.elastic_sigma * factor, 1e-3)
        radius = math.ceil(3 * self.sigma)
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(offsets**2) / (2 * self.sigma**2))
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)  # (K,) 1-D Gaussian

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        theta = self._affine(batch, images.device)  # (B, 2, 3)
        grid = nn.functional.affine_grid(theta, [batch, 1, height, width], align_corners=False)  # (B, H, W, 2)
        if self.alpha > 0:
            grid = grid + self._elastic(batch, height, width, images.device)
        return nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _affine(self, batch: int, device: torch.device) -> torch.Tensor:
        c = self.config

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(batch, device=device).uniform_(low, high)

        angle = torch.deg2rad(uniform(-c.degrees, c.degrees))
        shear = torch.tan(torch.deg2rad(uniform(-c.shear, c.shear)))
        zoom = uniform(*c.scale)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # grids map output → input: divide by zoom
        theta = torch.zeros(batch, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 0, 1] = cos, cos * shear - sin
        theta[:, 1, 0], theta[:, 1, 1] = sin, sin * shear + cos
        if c.flip_p > 0:  # drawn only when asked, so flip-free runs keep their random stream
            mirror = torch.rand(batch, device=device) < c.flip_p
            theta[:, :, 0] = torch.where(mirror[:, None], -theta[:, :, 0], theta[:, :, 0])  # read x from −x
        theta[:, :, 2] = torch.empty(batch, 2, device=device).uniform_(-2 * c.translate, 2 * c.translate)
        return theta

    def _elastic(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        noise = torch.empty(batch * 2, 1, height, width, device=device).uniform_(-1.0, 1.0)
        k = self.kernel.to(device)
        pad = k.numel() // 2
        smooth = nn.functional.conv2d(noise, k.view(1, 1, 1, -1), padding=(0, pad))
        smooth = nn.functional.conv2d(smooth, k.view(1, 1, -1, 1), padding=(pad, 0))  # (2B, 1, H, W)
        keep = (torch.rand(batch, device=device) < self.config.elastic_p).float().view(batch, 1, 1, 1)
        field = smooth.view(batch, 2, height, width).permute(0, 2, 3, 1) * keep  # (B, H, W, 2) in pixels / alpha
        pixels_to_grid = torch.tensor([2.0 / width, 2.0 / height], device=device)
        return field * self.alpha * pixels_to_grid
