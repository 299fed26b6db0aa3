"""`siamese:local@DIR`: a CNN checkpoint's global and per-cell embeddings as one multivector for late interaction
(Qdrant's MAX_SIM comparator, the ColBERT scheme), laid out so that the MaxSim score is the global cosine plus the
mean best cell-to-cell cosine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipeline.encoders.siamese.model import SiameseConfig


def cell_count(config: SiameseConfig) -> int:
    """How many cells the last feature map of a CNN config has: each stage after the first halves the side
    (a stride-2 3×3 convolution with padding 1 gives ceil(side / 2))."""
    side = config.input_size
    for _ in config.blocks[1:]:
        side = (side + 1) // 2
    return side * side


def local_problem(config: SiameseConfig) -> str:
    """Why a checkpoint cannot be a `siamese:local@DIR` encoder, or "" when it can."""
    if config.architecture != "cnn":
        return "local matching needs a CNN checkpoint (this one is a head on a backbone's vectors)"
    if config.distance != "cosine" or config.pool_grid != 1:
        return (
            "local matching needs a cosine model with global pooling (not BCE, not unnormalised, not a pooling grid "
            "over 1)"
        )
    return ""


def local_multivectors(global_: np.ndarray, cells: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """(N, D) unit global and (N, K, D) unit cell embeddings → (N, K + 1, 2D) multivectors whose MaxSim score is
    cos(global, global') + weight × mean over cells of the best-matching cell's cosine (each term floored at 0).

    Rows 0…K−1 hold cell·√(weight/K) in the first D dimensions, row K holds the global embedding in the last D, so a
    cell row and a global row are orthogonal: under Qdrant's MAX_SIM comparator with the dot product, each query cell
    finds its best cell (weight/K of its cosine) and the query's global row finds the other global row.
    """
    n, k, d = cells.shape
    out = np.zeros((n, k + 1, 2 * d), dtype=np.float32)
    out[:, :k, :d] = cells * np.sqrt(weight / k)
    out[:, k, d:] = global_
    return out
