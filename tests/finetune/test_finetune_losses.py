"""Each loss against values worked out by hand on 2–4 tiny vectors; the loss registry and its injected miners."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import miners

import finetune.losses
from finetune.config import FREE_MARGINS, LossConfig, LossName, Mining
from finetune.errors import FinetuneConfigError
from finetune.losses import (
    AbsDiffBCELoss,
    LossInfo,
    TripletLoss,
    balanced_pairs,
    create_loss,
    create_miner,
    late_similarity,
    list_losses,
    register_loss,
)

# Two classes of two 2-D unit vectors: same-class distances √0.8, different-class distances 2 and √3.2 (all > 1).
SPREAD = torch.tensor([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0], [-0.6, -0.8]])
SPREAD_LABELS = torch.tensor([0, 0, 1, 1])
# Two classes of two identical points: same-class distance 0, every different-class distance √2.
STACKED = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def test_contrastive_same_pairs_pay_squared_distance() -> None:
    # Hadsell: same pairs pay d² = 0.8 each (mean 0.8); every different pair is beyond the margin 1 and pays 0.
    loss = create_loss(LossConfig(LossName.CONTRASTIVE, margin=1.0), 2)
    assert float(loss(3.0 * SPREAD, SPREAD_LABELS)) == pytest.approx(0.8, abs=1e-5)  # scale-free: unit-normalised


def test_contrastive_different_pairs_pay_squared_hinge() -> None:
    # Same pairs pay 0; different pairs pay (m − √2)² with m = 2.
    loss = create_loss(LossConfig(LossName.CONTRASTIVE, margin=2.0), 2)
    assert float(loss(STACKED, SPREAD_LABELS)) == pytest.approx((2 - math.sqrt(2)) ** 2, abs=1e-5)


@pytest.mark.parametrize("mining", [Mining.ALL, Mining.BATCH_HARD])
def test_triplet_on_squared_distances(mining: Mining) -> None:
    # a=(1,0), p=(0.6,0.8) same class, n=(0,1): anchor a: 0.8 − 2 + 0.2 < 0 → 0; anchor p: 0.8 − 0.4 + 0.2 = 0.6.
    # Mean over the non-zero triplets: 0.6 (batch-hard picks the same two triplets here).
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    loss = create_loss(LossConfig(LossName.TRIPLET, margin=0.2, mining=mining), 2)
    assert float(loss(embeddings, torch.tensor([0, 0, 1]))) == pytest.approx(0.6, abs=1e-5)


def test_triplet_semihard_runs_and_is_non_negative() -> None:
    loss = create_loss(LossConfig(LossName.TRIPLET, mining=Mining.SEMIHARD), 2)
    assert float(loss(SPREAD, SPREAD_LABELS)) >= 0.0


def test_bce_on_weighted_absolute_difference() -> None:
    # Weights start at softplus(0) = ln 2; the bias starts at the first batch's (lower) median distance, here 0.
    # Same pair: |Δ| = 0 → logit 0 → −log σ(0) = ln 2.
    # Different pair: |Δ| = (1, 1) → logit −2 ln 2 → −log(1 − σ(−2 ln 2)) = ln(1 + 1/4). Mean of the two.
    loss = create_loss(LossConfig(LossName.BCE), 2)
    value = loss(STACKED[:3], torch.tensor([0, 0, 1]))
    assert float(value.detach()) == pytest.approx((math.log(2) + math.log(1.25)) / 2, abs=1e-5)
    assert isinstance(loss, AbsDiffBCELoss) and loss.distance == "manhattan"
    assert torch.allclose(loss.output_scale(), torch.full((2,), math.log(2)))


def test_bce_gradient_reaches_its_own_weights() -> None:
    loss = create_loss(LossConfig(LossName.BCE), 2)
    embeddings = SPREAD.clone().requires_grad_(True)
    loss(embeddings, SPREAD_LABELS).backward()
    assert isinstance(loss, AbsDiffBCELoss)
    assert loss.raw_weight.grad is not None and loss.bias.grad is not None and embeddings.grad is not None


def test_balanced_pairs_are_balanced_and_labelled_right() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    a1, p, a2, n = balanced_pairs(labels)
    assert len(a1) == len(a2) == 3 + 1 + 3  # every same pair; as many different pairs
    assert bool((labels[a1] == labels[p]).all()) and bool((labels[a2] != labels[n]).all())


def test_bad_loss_options_are_clear_errors() -> None:
    with pytest.raises(FinetuneConfigError, match="loss 'arcface'"):
        LossConfig("arcface")  # type: ignore[arg-type]
    with pytest.raises(FinetuneConfigError, match="triplet mining 'hardest'"):
        LossConfig(LossName.TRIPLET, mining="hardest")  # type: ignore[arg-type]
    with pytest.raises(FinetuneConfigError, match=r"loss margin 0\.0: must be positive"):
        LossConfig(LossName.TRIPLET, margin=0.0)


def test_bce_threshold_starts_at_the_first_batch_median_distance() -> None:
    # Pairs: same (0,1) at weighted L1 ln2·(0.4 + 0.8); different: two of (0,2), (1,2), (0,3), (1,3).
    loss = create_loss(LossConfig(LossName.BCE), 2)
    assert isinstance(loss, AbsDiffBCELoss)
    loss(SPREAD, SPREAD_LABELS)
    first = float(loss.bias.detach())
    assert 0.0 < first <= 2 * 2 * math.log(2)
    loss(STACKED, SPREAD_LABELS)
    assert float(loss.bias.detach()) == first  # only the first batch sets it


def test_supcon_softmax_over_the_batch() -> None:
    # τ = 1. Each anchor has one positive at cosine 1 and two negatives at cosine 0 (itself excluded):
    # −log(e / (e + 2)) = log(1 + 2/e) for every anchor, so the mean too.
    loss = create_loss(LossConfig(LossName.SUPCON, margin=1.0), 2)
    assert float(loss(STACKED, SPREAD_LABELS)) == pytest.approx(math.log(1 + 2 / math.e), abs=1e-5)
    assert loss.distance == "cosine"


def _late_rows(global_: list[list[float]], cells: list[list[list[float]]]) -> torch.Tensor:
    """`late_features` rows: the global embedding then the cells, flattened."""
    return torch.cat([torch.tensor(global_), torch.tensor(cells).flatten(1)], dim=1)


def test_late_similarity_averages_global_and_symmetrised_cell_matching() -> None:
    # Image 0's cells (1,0),(0,1); image 1's cells (1,0),(1,0). L_01: (1,0)→1, (0,1)→0: 0.5. L_10: both (1,0)→1: 1.
    # Globals (1,0) and (0.6,0.8): cosine 0.6. Similarity (0.6 + (0.5 + 1) / 2) / 2 = 0.675; each to itself 1.
    rows = _late_rows([[1.0, 0.0], [0.6, 0.8]], [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    sim = late_similarity(rows, 2)
    assert sim.flatten().tolist() == pytest.approx([1.0, 0.675, 0.675, 1.0], abs=1e-6)


def test_supcon_local_softmax_over_the_late_similarity() -> None:
    # τ = 1, four images: 0 and 1 one class, 2 and 3 the other. Same-class pairs: similarity 1 (identical globals and
    # cells); different-class pairs: globals orthogonal (0) and cells orthogonal (0), similarity 0. As supcon above:
    # every anchor's loss is log(1 + 2/e).
    a, b = [[1.0, 0.0], [[1.0, 0.0], [1.0, 0.0]]], [[0.0, 1.0], [[0.0, 1.0], [0.0, 1.0]]]
    rows = _late_rows([a[0], a[0], b[0], b[0]], [a[1], a[1], b[1], b[1]])  # type: ignore[list-item]
    loss = create_loss(LossConfig(LossName.SUPCON_LOCAL, margin=1.0), 2)
    assert loss.needs_cells and loss.distance == "cosine"
    assert float(loss(rows, SPREAD_LABELS)) == pytest.approx(math.log(1 + 2 / math.e), abs=1e-5)
    lone = float(loss(rows, torch.tensor([0, 1, 2, 3])))  # no anchor has a positive: nothing to learn
    assert lone == 0.0


def test_every_loss_name_is_registered_once_in_order() -> None:
    assert [info.name for info in list_losses()] == list(LossName)
    with pytest.raises(ValueError, match="already registered"):
        register_loss(LossInfo(LossName.BCE, "again"), lambda parts: AbsDiffBCELoss(parts.embedding_dim))


def test_an_unregistered_loss_is_a_clear_error_listing_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(finetune.losses._REGISTRY._entries, LossName.BCE)
    known = "contrastive, triplet, supcon, supcon-local"
    with pytest.raises(FinetuneConfigError, match=f"unknown loss 'bce'; known: {known}$"):
        create_loss(LossConfig(LossName.BCE), 2)


class _FixedMiner(torch.nn.Module):
    """Always the one triplet it was given (anchor, positive, negative)."""

    def __init__(self, anchor: int, positive: int, negative: int) -> None:
        super().__init__()
        self.triplet = (torch.tensor([anchor]), torch.tensor([positive]), torch.tensor([negative]))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.triplet


@pytest.mark.parametrize(("triplet", "expected"), [((0, 1, 2), 0.0), ((1, 0, 2), 0.6)])
def test_triplet_loss_uses_the_miner_it_is_given(triplet: tuple[int, int, int], expected: float) -> None:
    # As above: anchor a=(1,0) pays max(0, 0.8 − 2 + 0.2) = 0; anchor p=(0.6,0.8) pays 0.8 − 0.4 + 0.2 = 0.6.
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    loss = TripletLoss(0.2, miner=_FixedMiner(*triplet))
    assert float(loss(embeddings, torch.tensor([0, 0, 1]))) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("mining", "kind"),
    [(Mining.BATCH_HARD, miners.BatchHardMiner), (Mining.SEMIHARD, miners.TripletMarginMiner), (Mining.ALL, None)],
)
def test_create_loss_injects_the_configured_miner(mining: Mining, kind: type | None) -> None:
    loss = create_loss(LossConfig(LossName.TRIPLET, margin=0.3, mining=mining), 2)
    assert isinstance(loss, TripletLoss) and loss.loss.margin == 0.3
    assert loss.miner is None if kind is None else isinstance(loss.miner, kind)
    if mining == Mining.SEMIHARD:  # semi-hard negatives lie within the loss's own margin
        assert isinstance(loss.miner, miners.TripletMarginMiner) and loss.miner.margin == 0.3
    assert create_miner(mining, 0.3).__class__ is loss.miner.__class__


def test_default_margins_per_loss() -> None:
    assert create_loss(LossConfig(LossName.CONTRASTIVE), 2).loss.neg_margin == 1.0  # type: ignore[union-attr]
    assert create_loss(LossConfig(LossName.TRIPLET), 2).loss.margin == 0.2  # type: ignore[union-attr]
    assert create_loss(LossConfig(LossName.SUPCON), 2).loss.temperature == 0.1  # type: ignore[union-attr]
    assert create_loss(LossConfig(LossName.SUPCON_LOCAL), 2).temperature == 0.1


def _free(name: LossName, margin: float | None = None, mining: Mining = Mining.ALL) -> LossConfig:
    return LossConfig(name, margin, mining, normalize=False)


def test_free_contrastive_pays_raw_euclidean_distances() -> None:
    # 3 × SPREAD, not normalised: same pairs pay (3√0.8)² = 7.2 (0.8 once normalised); different pairs are 6 and
    # 3√3.2 ≈ 5.4 apart, beyond the margin 2, and pay 0.
    loss = create_loss(_free(LossName.CONTRASTIVE, margin=2.0), 2)
    assert float(loss(3.0 * SPREAD, SPREAD_LABELS)) == pytest.approx(7.2, abs=1e-4)
    assert loss.distance == "euclid"


def test_free_contrastive_default_margin_is_in_raw_units() -> None:
    # 0.5 × STACKED: different pairs √2/2 apart pay (2 − √2/2)² at the free default margin 2 (normalised they
    # would be √2 apart, beyond that loss's default margin 1, and pay nothing).
    loss = create_loss(_free(LossName.CONTRASTIVE), 2)
    assert FREE_MARGINS[LossName.CONTRASTIVE] == 2.0
    assert float(loss(0.5 * STACKED, SPREAD_LABELS)) == pytest.approx((2 - math.sqrt(2) / 2) ** 2, abs=1e-5)


@pytest.mark.parametrize("mining", [Mining.ALL, Mining.BATCH_HARD])
def test_free_triplet_on_raw_squared_distances(mining: Mining) -> None:
    # 2 × the triplet above: squared distances × 4. Anchor a: 3.2 − 8 + 0.2 < 0 → 0; anchor p: 3.2 − 1.6 + 0.2 = 1.8.
    embeddings = 2.0 * torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    loss = create_loss(_free(LossName.TRIPLET, margin=0.2, mining=mining), 2)
    assert float(loss(embeddings, torch.tensor([0, 0, 1]))) == pytest.approx(1.8, abs=1e-4)
    assert loss.distance == "euclid"


@pytest.mark.parametrize("mining", [Mining.BATCH_HARD, Mining.SEMIHARD])
def test_free_triplet_miners_measure_raw_distances(mining: Mining) -> None:
    loss = create_loss(_free(LossName.TRIPLET, mining=mining), 2)
    assert isinstance(loss, TripletLoss) and loss.loss.margin == FREE_MARGINS[LossName.TRIPLET] == 1.0
    assert loss.miner is not None and loss.miner.distance.normalize_embeddings is False
    assert create_loss(LossConfig(LossName.TRIPLET, mining=mining), 2).miner.distance.normalize_embeddings  # type: ignore[union-attr]


@pytest.mark.parametrize("name", [LossName.BCE, LossName.SUPCON, LossName.SUPCON_LOCAL])
def test_losses_on_unit_vectors_refuse_normalize_off(name: LossName) -> None:
    with pytest.raises(FinetuneConfigError, match=f"loss {name} is defined on unit vectors") as caught:
        LossConfig(name, normalize=False)
    assert caught.value.setting == "normalize" and "\n" not in str(caught.value)
