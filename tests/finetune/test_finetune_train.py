"""The training loop on tiny synthetic tensors: the loss falls, weights move, early stopping keeps the best epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import torch

from finetune.config import LossConfig, TrainConfig
from finetune.losses import create_loss
from finetune.train import TrainData, batch_shape, train
from finetune.validation import NoValidation
from pipeline.core.records import Distance
from pipeline.encoders.siamese.model import SiameseConfig, SiameseNet, build_model


@dataclass
class ScriptedValidation:
    """A validation whose metric per call is scripted (then repeats the last value); records each call."""

    values: Sequence[float]
    name: str = "scripted"
    paths: tuple[str, ...] = ("v0", "v1")
    seen: list[np.ndarray] = field(default_factory=list)
    distances: list[Distance] = field(default_factory=list)

    def evaluate(self, vectors: np.ndarray, distance: Distance) -> float:
        self.seen.append(vectors.copy())
        self.distances.append(distance)
        return float(self.values[min(len(self.seen) - 1, len(self.values) - 1)])


def head_model(dim: int = 8) -> SiameseNet:
    return build_model(SiameseConfig("head", dim, backbone="tiny:thumb8", input_dim=dim, hidden_dim=16))


def cnn_model() -> SiameseNet:
    config = SiameseConfig("cnn", 8, input_size=12, channels=1, width=4, blocks=(1, 1), mean=(0.5,), std=(0.25,))
    return build_model(config)


def head_data(validation: ScriptedValidation, seed: int = 0) -> TrainData:
    """4 classes × 8 noisy copies of a random 8-d centre."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 8, generator=g)
    labels = torch.arange(4).repeat_interleave(8)
    inputs = centres[labels] + 0.6 * torch.randn(32, 8, generator=g)
    return TrainData(inputs, labels, inputs[:2], np.ones(2, dtype=bool), validation)


def cnn_data(validation: ScriptedValidation) -> TrainData:
    """4 classes of 12×12 images: a bright bar in one of four places, with noise."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(6)
    images = torch.rand(24, 1, 12, 12, generator=g) * 60
    for i, label in enumerate(labels.tolist()):
        images[i, 0, 3 * label : 3 * label + 3, :] += 180
    images = images.to(torch.uint8)
    to_float = lambda batch: batch.float() / 255.0  # noqa: E731
    return TrainData(images, labels, images[:2], np.ones(2, dtype=bool), validation, to_float, to_float)


FAST = TrainConfig(epochs=6, batch_size=16, m_per_class=4, lr=3e-3, steps_per_epoch=6, progress=False, patience=99)


@pytest.mark.parametrize("loss_name", ["contrastive", "triplet", "bce"])
@pytest.mark.parametrize("mode", ["head", "cnn"])
def test_a_few_steps_lower_the_loss_and_change_the_weights(mode: str, loss_name: str) -> None:
    rising = ScriptedValidation([0.1 * k for k in range(20)])  # every epoch "better": the last weights are kept
    model, data = (head_model(), head_data(rising)) if mode == "head" else (cnn_model(), cnn_data(rising))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = create_loss(LossConfig(loss_name, mining="all"), 8)  # type: ignore[arg-type]
    result = train(FAST, model, loss, data, torch.device("cpu"))
    losses = [r.loss for r in result.history[1:]]
    assert losses[-1] < losses[0], losses
    assert result.best_epoch == FAST.epochs
    changed = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed, "no weight moved"


@pytest.mark.parametrize("loss_name", ["contrastive", "triplet"])
def test_a_free_space_model_trains_on_raw_vectors_and_validates_by_euclid(loss_name: str) -> None:
    rising = ScriptedValidation([0.1 * k for k in range(20)])
    head = SiameseConfig("head", 8, "euclid", normalize=False, backbone="tiny:thumb8", input_dim=8, hidden_dim=16)
    model = build_model(head)
    loss = create_loss(LossConfig(loss_name, mining="all", normalize=False), 8)  # type: ignore[arg-type]
    result = train(FAST, model, loss, head_data(rising), torch.device("cpu"))
    losses = [r.loss for r in result.history[1:]]
    assert losses[-1] < losses[0], losses
    assert set(rising.distances) == {"euclid"}
    norms = np.linalg.norm(np.concatenate(rising.seen), axis=1)
    assert np.abs(norms - 1.0).max() > 0.1  # validated on the raw outputs, not unit vectors


def test_early_stopping_keeps_the_best_epoch() -> None:
    scripted = ScriptedValidation([0.2, 0.5, 0.9, 0.4, 0.3, 0.2, 0.1])
    model = head_model()
    config = TrainConfig(epochs=10, batch_size=16, steps_per_epoch=2, progress=False, patience=2)
    result = train(config, model, create_loss(LossConfig(), 8), head_data(scripted), torch.device("cpu"))
    assert result.best_epoch == 2 and result.best_metric == 0.9 and result.baseline_metric == 0.2
    assert len(result.history) == 5  # epochs 0..4: two epochs without gain after epoch 2
    np.testing.assert_allclose(_outputs(model), scripted.seen[2], rtol=1e-5)  # the model holds epoch 2's weights


def test_without_validation_every_epoch_runs_and_the_last_weights_are_kept() -> None:
    data = replace(head_data(ScriptedValidation([0.0])), validation=NoValidation())
    config = TrainConfig(epochs=4, batch_size=16, steps_per_epoch=2, progress=False, patience=1)
    model = head_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(config, model, create_loss(LossConfig(), 8), data, torch.device("cpu"))
    assert result.best_epoch == 4 and len(result.history) == 5  # patience 1 would have stopped a validated run
    assert all(math.isnan(r.metric) for r in result.history) and math.isnan(result.best_metric)
    assert all(torch.equal(v.cpu(), result.state[k]) for k, v in model.state_dict().items())  # the last weights
    assert any(not torch.equal(v, before[k]) for k, v in result.state.items() if v.dtype.is_floating_point)


def test_a_head_that_never_beats_the_backbone_stays_the_backbone() -> None:
    flat = ScriptedValidation([0.7])
    model = head_model()
    config = TrainConfig(epochs=3, batch_size=16, steps_per_epoch=2, progress=False)
    result = train(config, model, create_loss(LossConfig(), 8), head_data(flat), torch.device("cpu"))
    assert result.best_epoch == 0
    x = torch.randn(5, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), torch.nn.functional.normalize(x, dim=1).numpy(), atol=1e-6)


def test_min_delta_ignores_gains_below_it() -> None:
    noisy = ScriptedValidation([0.900, 0.901, 0.902, 0.899])
    config = TrainConfig(epochs=3, batch_size=16, steps_per_epoch=1, progress=False, min_delta=0.005)
    result = train(config, head_model(), create_loss(LossConfig(), 8), head_data(noisy), torch.device("cpu"))
    assert result.best_epoch == 0


def test_same_seed_same_run() -> None:
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = head_model()
        config = TrainConfig(epochs=2, batch_size=16, steps_per_epoch=3, progress=False, seed=7)
        train(
            config, model, create_loss(LossConfig(), 8), head_data(ScriptedValidation([0.0, 1.0])), torch.device("cpu")
        )
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_batch_shape_fits_small_data() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])  # three classes of two
    assert batch_shape(TrainConfig(batch_size=128, m_per_class=4), labels) == (6, 2)


def _outputs(model: SiameseNet) -> np.ndarray:
    data = head_data(ScriptedValidation([0.0]))
    with torch.no_grad():
        model.eval()
        return model(data.val_inputs).numpy()
