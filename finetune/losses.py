"""Siamese losses over a batch of embeddings and class labels, each with the pairs or triplets it mines.

- contrastive (Hadsell, Chopra & LeCun 2006): pytorch-metric-learning's `ContrastiveLoss` with its hinges squared
  (same pairs pay d², different pairs max(0, m − d)²), on balanced pairs: every same-class pair of the batch and as
  many random different-class pairs.
- triplet (Schroff, Kalenichenko & Philbin 2015): `TripletMarginLoss` on squared L2 distances,
  max(0, d(a,p)² − d(a,n)² + α), with batch-hard or semi-hard mining (pytorch-metric-learning miners).
- bce (Koch, Zemel & Salakhutdinov 2015): p(same) = σ(b − Σ_j w_j |f1_j − f2_j|), w = softplus(v) ≥ 0, on the same
  balanced pairs. Constraining w ≥ 0 makes the logit a weighted L1 distance, which the trained encoder reproduces
  exactly: it outputs w ⊙ f and declares Manhattan distance.
- supcon (Khosla et al. 2020): pytorch-metric-learning's `SupConLoss`, a softmax over cosine similarities / τ in
  which every other same-class example of the batch is a positive and all the rest are negatives — every pair of
  the batch contributes, none is mined; `--margin` is read as the temperature τ (default 0.1).
- supcon-local: the same softmax over a late-interaction similarity (CNN only): the mean of the global cosine and
  the symmetrised mean best cell-to-cell cosine between the cells of the last feature map — what the
  `siamese:local@DIR` encoder scores, so the cells learn to match across drawings of a character.

pytorch-metric-learning normalises embeddings to unit length, so distances lie in [0, 2]. Without normalisation
(`LossConfig.normalize` False: contrastive and triplet only) the model's raw vectors are compared by Euclidean
distance (`LpDistance(normalize_embeddings=False)`), margins are in those raw units (defaults:
`finetune.config.FREE_MARGINS`), and the trained encoder declares euclid.

Losses are a name-keyed registry with one factory, as encoders are (`pipeline.encoders.registry`):
`create_loss(LossConfig(...), embedding_dim)` builds the loss a config names, its collaborators injected (the
triplet loss is given the miner `create_miner` builds); `list_losses()` describes them, `register_loss` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import LpDistance
from torch import nn

from finetune.config import FREE_MARGINS, LossConfig, LossName, Mining
from finetune.errors import FinetuneConfigError
from pipeline.core.records import Distance
from pipeline.core.registry import Registry

# How much a supcon-local model's `siamese:local@DIR` score weighs the cells against the global cosine. Chosen on the
# development split (benchmarks/omniglot_local_dev.sh): 3 beat 1, 2, 4 and 6 there; cosine-trained models get 1.
LOCAL_LOSS_WEIGHT = 3.0
IndexTuple = tuple[torch.Tensor, ...]


def balanced_pairs(labels: torch.Tensor) -> IndexTuple:
    """Every same-label pair (i < j) of a batch, and as many different-label pairs drawn at random.

    Returns:
        (a1, p, a2, n) index tensors, pytorch-metric-learning's pair format; len(a1) == len(a2).
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    upper = torch.ones_like(same).triu(diagonal=1)
    a1, p = torch.nonzero(same & upper, as_tuple=True)
    a2, n = torch.nonzero(~same & upper, as_tuple=True)
    count = min(len(a1), len(a2))
    pick = torch.randperm(len(a2), device=labels.device)[:count]
    keep = torch.randperm(len(a1), device=labels.device)[:count]
    return a1[keep], p[keep], a2[pick], n[pick]


class SiameseLoss(nn.Module):
    """A loss on (B, D) unit (or, for a free-space loss, raw) embeddings and (B,) int labels; `distance` is what the
    trained encoder declares.

    A loss with `needs_cells` takes `SiameseNet.late_features` instead: (B, D + K·D), the global embedding then the
    K cell embeddings, all unit length.
    """

    distance: Distance = "cosine"
    needs_cells: bool = False

    def output_scale(self) -> torch.Tensor | None:
        """Per-dimension weights to fold into the encoder's output (BCE), or None."""
        return None


class SquaredContrastiveLoss(losses.ContrastiveLoss):
    """pytorch-metric-learning's contrastive loss with Hadsell et al.'s squared hinges."""

    def pos_calc(self, pos_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return nn.functional.relu(pos_pair_dist - margin) ** 2

    def neg_calc(self, neg_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return nn.functional.relu(margin - neg_pair_dist) ** 2


def _distance(normalize: bool) -> Distance:
    """What an encoder trained on unit (cosine) or raw (Euclidean) embeddings declares."""
    return "cosine" if normalize else "euclid"


class ContrastiveLoss(SiameseLoss):
    """Hadsell et al. 2006 on balanced pairs; same and different pair losses are averaged separately, then added.
    Without `normalize`, on Euclidean distances between raw embeddings (the margin in raw units)."""

    def __init__(self, margin: float, normalize: bool = True) -> None:
        super().__init__()
        distance = LpDistance(normalize_embeddings=normalize)
        self.loss = SquaredContrastiveLoss(pos_margin=0.0, neg_margin=margin, distance=distance)
        self.distance = _distance(normalize)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels, balanced_pairs(labels))


class TripletLoss(SiameseLoss):
    """Schroff et al. 2015 on squared L2 distances, over the triplets `miner` picks (mean of the non-zero ones).

    Args:
        miner: a pytorch-metric-learning triplet miner (`create_miner`); None = every triplet of the batch.
        normalize: False = on raw embeddings (the miner must be built alike), the margin in raw squared units.
    """

    def __init__(self, margin: float, miner: nn.Module | None = None, normalize: bool = True) -> None:
        super().__init__()
        distance = LpDistance(power=2, normalize_embeddings=normalize)
        self.loss = losses.TripletMarginLoss(margin=margin, distance=distance)
        self.miner = miner
        self.distance = _distance(normalize)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        indices = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, indices)


class AbsDiffBCELoss(SiameseLoss):
    """Koch et al. 2015: binary cross-entropy of σ(b − Σ_j softplus(v_j) |f1_j − f2_j|) on balanced pairs."""

    distance: Distance = "manhattan"

    started: torch.Tensor

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.raw_weight = nn.Parameter(torch.zeros(embedding_dim))  # softplus(0) = ln 2 for every dimension
        self.bias = nn.Parameter(torch.zeros(()))
        self.register_buffer("started", torch.tensor(False))

    def weights(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_weight)  # (D,) ≥ 0

    def distances(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """(P,) weighted L1 distances Σ_j w_j |l_j − r_j| of (P, D) embeddings."""
        return ((left - right).abs() * self.weights()).sum(dim=1)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        a1, p, a2, n = balanced_pairs(labels)
        if len(a1) == 0:
            return embeddings.sum() * 0.0  # no pair in this batch: a zero that still has a graph
        unit = nn.functional.normalize(embeddings, dim=1)
        distances = torch.cat([self.distances(unit[a1], unit[p]), self.distances(unit[a2], unit[n])])  # (2P,)
        if not self.started:
            # Start the threshold at the first batch's median distance: from b = 0 every pair would look
            # "different" (128-d unit vectors are ~9 apart), and Adam moves b by ~lr per step.
            with torch.no_grad():
                self.bias.fill_(distances.median())
                self.started.fill_(True)
        targets = torch.cat([torch.ones(len(a1)), torch.zeros(len(a2))]).to(distances.device)
        return nn.functional.binary_cross_entropy_with_logits(self.bias - distances, targets)

    def output_scale(self) -> torch.Tensor:
        return self.weights().detach()


class SupConLoss(SiameseLoss):
    """Khosla et al. 2020 with temperature τ: all same-class pairs of the batch are positives, all others negatives."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.loss = losses.SupConLoss(temperature=temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels)


def late_similarity(embeddings: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """(B, B) similarity of `late_features` rows: (cos(g_i, g_j) + (L_ij + L_ji) / 2) / 2, where L_ij is the mean
    over i's cells of the best cosine to one of j's cells."""
    b, d = embeddings.shape[0], embedding_dim
    global_, cells = embeddings[:, :d], embeddings[:, d:].reshape(b, -1, d)
    best = torch.einsum("ikd,jld->ijkl", cells, cells).amax(dim=3).mean(dim=2)  # (B, B): L_ij
    return (global_ @ global_.T + (best + best.T) / 2) / 2


class LocalSupConLoss(SiameseLoss):
    """Supervised contrastive loss (temperature τ) on `late_similarity`; anchors without a positive are left out."""

    needs_cells = True

    def __init__(self, temperature: float, embedding_dim: int) -> None:
        super().__init__()
        self.temperature, self.embedding_dim = temperature, embedding_dim

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b = embeddings.shape[0]
        self_pair = torch.eye(b, dtype=torch.bool, device=embeddings.device)
        logits = (late_similarity(embeddings, self.embedding_dim) / self.temperature).masked_fill(self_pair, -1e9)
        log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (labels[:, None] == labels[None, :]) & ~self_pair
        anchors = positive.any(dim=1)
        if not anchors.any():
            return embeddings.sum() * 0.0  # no same-class pair in the batch: nothing to learn, graph kept
        mean_log_p = (log_p * positive).sum(dim=1)[anchors] / positive.sum(dim=1)[anchors]
        return -mean_log_p.mean()


MinerFactory = Callable[[float, bool], nn.Module | None]  # margin, normalize → miner (None: every triplet)

# Semi-hard negatives lie within the loss's own margin, so that miner is built with it (and its distance).
_MINERS: dict[Mining, MinerFactory] = {
    Mining.BATCH_HARD: lambda margin, normalize: miners.BatchHardMiner(
        distance=LpDistance(normalize_embeddings=normalize)
    ),
    Mining.SEMIHARD: lambda margin, normalize: miners.TripletMarginMiner(
        margin=margin, type_of_triplets="semihard", distance=LpDistance(power=2, normalize_embeddings=normalize)
    ),
    Mining.ALL: lambda margin, normalize: None,
}


def create_miner(mining: Mining, margin: float, normalize: bool = True) -> nn.Module | None:
    """The triplet miner `mining` names, for a loss with this margin on unit (or, without `normalize`, raw)
    embeddings; None = every triplet (`all`).

    Raises:
        FinetuneConfigError: an unknown mining name.
    """
    if mining not in _MINERS:
        raise FinetuneConfigError(f"unknown triplet mining '{mining}'; known: {', '.join(_MINERS)}")
    return _MINERS[mining](margin, normalize)


@dataclass(frozen=True)
class LossInfo:
    """One registered loss: its name, what it is, its default margin (None: it has none) and whether it takes a
    triplet miner."""

    name: LossName
    summary: str
    default_margin: float | None = None
    mined: bool = False


@dataclass(frozen=True)
class LossParts:
    """What a loss constructor is given: the config's margin (else the loss's default; 0 for a loss without one),
    the embedding size, the miner `create_miner` built for it (None unless the loss is `mined`), and whether the
    embeddings are unit length (False only for the losses in `FREE_MARGINS`)."""

    margin: float
    embedding_dim: int
    miner: nn.Module | None = None
    normalize: bool = True


LossFactory = Callable[[LossParts], SiameseLoss]
_REGISTRY: Registry[LossName, LossInfo, LossFactory] = Registry("loss")


def register_loss(info: LossInfo, factory: LossFactory) -> None:
    """Add a loss; a second registration of the same name is a programming error."""
    _REGISTRY.register(info.name, info, factory)


def list_losses() -> list[LossInfo]:
    """All registered losses, in registration order."""
    return _REGISTRY.infos()


def create_loss(config: LossConfig, embedding_dim: int) -> SiameseLoss:
    """The loss module a config names, with its miner (BCE has trainable weights: optimise its parameters with the
    model's).

    Raises:
        FinetuneConfigError: a loss name nothing registered (the message lists the known ones).
    """
    entry = _REGISTRY.get(config.name)
    if entry is None:
        known = ", ".join(str(name) for name in _REGISTRY.names())
        raise FinetuneConfigError(f"unknown loss '{config.name}'; known: {known}", setting="loss")
    info, factory = entry
    default = info.default_margin if config.normalize else FREE_MARGINS.get(config.name)  # LossConfig checked it
    margin = config.margin if config.margin is not None else (default or 0.0)
    miner = create_miner(config.mining, margin, config.normalize) if info.mined else None
    return factory(LossParts(margin, embedding_dim, miner, config.normalize))


register_loss(
    LossInfo(LossName.CONTRASTIVE, "Hadsell et al. 2006 on balanced pairs, squared hinges", default_margin=1.0),
    lambda parts: ContrastiveLoss(parts.margin, parts.normalize),
)
register_loss(
    LossInfo(LossName.TRIPLET, "Schroff et al. 2015 on squared L2, mined triplets", default_margin=0.2, mined=True),
    lambda parts: TripletLoss(parts.margin, parts.miner, parts.normalize),
)
register_loss(
    LossInfo(LossName.BCE, "Koch et al. 2015: BCE of a learned weighted |f1 - f2|, Manhattan distance"),
    lambda parts: AbsDiffBCELoss(parts.embedding_dim),
)
register_loss(
    LossInfo(LossName.SUPCON, "Khosla et al. 2020 over every pair of the batch (margin: temperature)", 0.1),
    lambda parts: SupConLoss(parts.margin),
)
register_loss(
    LossInfo(LossName.SUPCON_LOCAL, "supcon on global + cell-to-cell similarity (CNN only)", default_margin=0.1),
    lambda parts: LocalSupConLoss(parts.margin, parts.embedding_dim),
)
