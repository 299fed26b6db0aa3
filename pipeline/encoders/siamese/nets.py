"""The networks behind `siamese@DIR` encoders: an MLP projection head and a small ResNet, each wrapped in
`SiameseNet` (L2-normalised output unless asked not to, per-dimension scale).

Why a small ResNet and not Koch et al.'s (2015) convnet: Koch's net is tied to 105×105 inputs (its 9216→4096 fully
connected layer holds 38 M of its ~39 M weights) and costs about 1 GMAC per image, hours per run on a laptop CPU; it
also needed per-layer learning rates and momenta found by Bayesian optimisation. A residual net with batch norm,
global average pooling (any input size) and ~0.3 M weights trains from scratch with one Adam learning rate, at
~300 images/s per CPU core at 28 px — the resolution few-shot Omniglot work (Vinyals 2016, Snell 2017) uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """x ↦ skip(x) + mlp(x) on a frozen backbone's vectors.

    The MLP's last layer starts at zero and the skip is the identity when the sizes match, so training starts from
    the backbone's own embedding space: early stopping can only keep or improve on the frozen features.
    """

    def __init__(self, input_dim: int, hidden_dim: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.skip: nn.Module = (
            nn.Identity() if input_dim == embedding_dim else nn.Linear(input_dim, embedding_dim, bias=False)
        )
        last = nn.Linear(hidden_dim, embedding_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, input_dim) → (B, embedding_dim)
        return self.skip(x) + self.mlp(x)


class ResidualBlock(nn.Module):
    """Two 3×3 conv-BN layers with a shortcut (He et al. 2016's basic block)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SiameseCNN(nn.Module):
    """Small ResNet: 3×3 stem, stages of residual blocks (stride 2 and ×2 width after the first), average pooling
    to a `pool_grid`² grid (adaptive, so any input size works), and a linear embedding layer."""

    def __init__(
        self, channels: int, width: int, blocks: Sequence[int], embedding_dim: int, pool_grid: int = 1
    ) -> None:
        super().__init__()
        self.pool_grid = pool_grid
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        cin = width
        for stage, count in enumerate(blocks):
            cout = width * 2**stage
            for i in range(count):
                layers.append(ResidualBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pool_grid), nn.Flatten())
        self.embed = nn.Linear(cin * pool_grid**2, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, S, S) → (B, embedding_dim)
        return self.embed(self.features(x))

    def cell_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) → (B, h·w, embedding_dim): the embedding layer applied to each cell of the last feature map.

        With global pooling their mean is the global embedding (the layer is linear), so each cell is a piece of
        the same space: what `SiameseNet.local_features` matches cell to cell. Needs pool_grid 1.
        """
        if self.pool_grid != 1:
            raise ValueError("cell embeddings need global pooling (pool_grid 1)")
        cells = self.features[:-2](x)  # (B, C', h, w): all but the pooling and flattening
        return self.embed(cells.flatten(2).transpose(1, 2))


class SiameseNet(nn.Module):
    """A body (head or CNN) whose output is L2-normalised (unless `normalize` is False), then scaled per dimension
    by `scale`.

    `scale` is all ones for cosine and Euclidean models; for BCE models it holds the learned |f1 − f2| weights, so
    Manhattan distance between outputs equals the weighted L1 distance the BCE head was trained on. Without
    normalisation the output is the body's raw vector: a free Euclidean space (the losses then use Euclidean
    distance on it, and the encoder declares euclid).
    """

    scale: torch.Tensor

    def __init__(self, body: nn.Module, embedding_dim: int, normalize: bool = True) -> None:
        super().__init__()
        self.body = body
        self.normalize = normalize
        self.register_buffer("scale", torch.ones(embedding_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings before scaling, (B, D): unit length, or raw without normalisation; what the losses see."""
        raw = self.body(x).float()
        return nn.functional.normalize(raw, dim=1) if self.normalize else raw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) * self.scale  # (B, D)

    def local_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length global embeddings (B, D) and unit-length cell embeddings (B, K, D) of a CNN body."""
        if not isinstance(self.body, SiameseCNN) or not self.normalize:
            raise ValueError("local features need a CNN body with normalised output, not a head or a free space")
        raw = self.body.cell_embeddings(x).float()  # their mean is the global embedding: one pass for both
        return nn.functional.normalize(raw.mean(dim=1), dim=1), nn.functional.normalize(raw, dim=2)

    def late_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D + K·D): the unit global embedding, then the K unit cell embeddings flattened (a late-interaction
        loss's input)."""
        global_, cells = self.local_features(x)
        return torch.cat([global_, cells.flatten(1)], dim=1)
