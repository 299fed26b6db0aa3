"""The training loop: M-per-class batches, a Siamese loss, validation after every epoch, early stopping.

`train(config, model, loss, data, device)` takes everything by injection, so tests pass a tiny model and data.
Epoch 0 is the validation metric before any step: for a head, the frozen backbone's own score, which early
stopping keeps when training does not beat it. With no validation (no paths: `--val-fraction 0`) every epoch
runs, the metric is NaN and the last weights are kept.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from finetune.config import TrainConfig
from finetune.losses import SiameseLoss
from finetune.validation import Validation
from pipeline.core.device import is_cuda
from pipeline.encoders.siamese.model import SiameseNet

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainData:
    """In-memory inputs.

    Attributes:
        inputs: (N, ...) training inputs as stored (backbone vectors, or uint8 images).
        labels: (N,) int64 class index of each input.
        val_inputs: (M, ...) inputs for `validation.paths`, in that order; rows where `val_ok` is False are unused.
        transform: applied on the device to each training batch (augment + normalise); None = as is.
        eval_transform: applied on the device to validation batches (normalise); None = as is.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    val_inputs: torch.Tensor
    val_ok: np.ndarray
    validation: Validation
    transform: BatchTransform | None = None
    eval_transform: BatchTransform | None = None


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss (NaN for epoch 0, before training) and the validation metric."""

    epoch: int
    loss: float
    metric: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """The run's history and the best weights (already loaded into the model `train` was given)."""

    metric_name: str
    history: tuple[EpochRecord, ...]
    best_epoch: int
    state: dict[str, torch.Tensor]

    @property
    def best_metric(self) -> float:
        return self.history[self.best_epoch].metric

    @property
    def baseline_metric(self) -> float:
        return self.history[0].metric


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch: pytorch-metric-learning's sampler and miners draw from numpy's global RNG."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_shape(config: TrainConfig, labels: torch.Tensor) -> tuple[int, int]:
    """(batch_size, m_per_class) that MPerClassSampler accepts: m ≤ the median class size, m divides the batch,
    and the batch is no larger than m × classes."""
    sizes = torch.bincount(labels)
    sizes = sizes[sizes > 0]
    m = max(2, min(config.m_per_class, int(sizes.median())))
    batch = max(m, min(config.batch_size, m * len(sizes)) // m * m)
    return batch, m


def _loader(config: TrainConfig, data: TrainData, device: torch.device) -> DataLoader:
    batch, m = batch_shape(config, data.labels)
    steps = config.steps_per_epoch or max(1, len(data.labels) // batch)
    sampler = MPerClassSampler(data.labels.numpy(), m, batch_size=batch, length_before_new_iter=steps * batch)
    return DataLoader(
        TensorDataset(data.inputs, data.labels),
        batch_size=batch,
        sampler=sampler,
        num_workers=config.workers,
        pin_memory=is_cuda(device),
        drop_last=True,
    )


def train(
    config: TrainConfig, model: SiameseNet, loss: SiameseLoss, data: TrainData, device: torch.device
) -> TrainResult:
    """Train `model` (and the loss's own parameters) and leave the best-validation (no validation: last) weights
    loaded in it.

    Raises:
        ValueError: fewer than two classes to train on.
    """
    if len(torch.unique(data.labels)) < 2:
        raise ValueError("training needs at least two classes")
    seed_everything(config.seed)
    model.to(device)
    loss.to(device)
    optimizer = torch.optim.AdamW(
        [*model.parameters(), *loss.parameters()], config.lr, weight_decay=config.weight_decay
    )
    loader = _loader(config, data, device)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * len(loader)))
    amp = config.amp and is_cuda(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    validates = bool(data.validation.paths)
    history = [EpochRecord(0, math.nan, _validate(model, loss, data, device, amp), 0.0)]
    best_epoch, best_state = 0, copy.deepcopy(model.state_dict())
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not config.progress)
        mean_loss = _train_epoch(model, loss, bar, (optimizer, scheduler, scaler), data.transform, device, amp)
        metric = _validate(model, loss, data, device, amp)
        history.append(EpochRecord(epoch, mean_loss, metric, time.perf_counter() - start))
        if config.progress:
            tqdm.write(f"epoch {epoch}: loss {mean_loss:.4f} · {data.validation.name} {metric:.4f}")
        if not validates or metric > history[best_epoch].metric + config.min_delta:
            best_epoch, best_state = epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    state = {k: v.detach().cpu() for k, v in best_state.items()}
    return TrainResult(data.validation.name, tuple(history), best_epoch, state)


def _train_epoch(
    model: SiameseNet,
    loss_fn: SiameseLoss,
    batches: tqdm,
    steppers: tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, torch.amp.GradScaler],
    transform: BatchTransform | None,
    device: torch.device,
    amp: bool,
) -> float:
    """One pass over `batches`; returns the mean loss."""
    optimizer, scheduler, scaler = steppers
    model.train()
    total, count = 0.0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if transform is not None:
            inputs = transform(inputs)
        with torch.autocast(device.type, enabled=amp):
            # (B, D) float32, unit length unless the model is unnormalised; a late-interaction loss also gets cells
            embeddings = model.late_features(inputs) if loss_fn.needs_cells else model.features(inputs)
        value = loss_fn(embeddings, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total, count = total + float(value.detach()), count + 1
        batches.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def _validate(model: SiameseNet, loss_fn: SiameseLoss, data: TrainData, device: torch.device, amp: bool) -> float:
    """Fold the loss's output scale into the model (BCE), embed the validation inputs, score the task (NaN: none)."""
    scale = loss_fn.output_scale()
    with torch.no_grad():
        if scale is not None:
            model.scale.copy_(scale)
    if not data.validation.paths:
        return math.nan
    vectors = embed(model, data.val_inputs, data.val_ok, device, data.eval_transform, amp)
    return data.validation.evaluate(vectors, loss_fn.distance)


def embed(
    model: SiameseNet,
    inputs: torch.Tensor,
    ok: np.ndarray,
    device: torch.device,
    transform: BatchTransform | None = None,
    amp: bool = False,
    batch: int = 512,
) -> np.ndarray:
    """(M, D) float32 model outputs in eval mode; NaN rows where `ok` is False."""
    model.eval()
    out = np.full((len(inputs), int(model.scale.numel())), np.nan, dtype=np.float32)
    rows = np.flatnonzero(ok)
    with torch.inference_mode(), torch.autocast(device.type, enabled=amp):
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            x = inputs[torch.from_numpy(chunk)].to(device)
            out[chunk] = model(transform(x) if transform is not None else x).float().cpu().numpy()
    return out
