"""Batched embedding with decode overlapped with the forward pass (DataLoader workers)."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.core.device import is_cuda
from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import DecodeLimits, load_rgb
from pipeline.encoders.base import Encoder

EmbedStatus = Literal["ok", "no_face", "failed"]
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class EmbedConfig:
    """Batching and worker settings for `embed_paths`."""

    batch_size: int = 32
    workers: int = 2
    max_pixels: int = 89_478_485


@dataclass(frozen=True)
class EmbeddedItem:
    """The result for one input path: a vector, or the reason there is none."""

    index: int
    status: EmbedStatus
    vector: np.ndarray | None
    reason: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class PreparedItem:
    """One input decoded and `prepare`d (CPU work, in a worker), or the reason it could not be."""

    index: int
    item: Any
    width: int
    height: int
    error: str


def prepare_image(index: int, path: str, encoder: Encoder, limits: DecodeLimits) -> PreparedItem:
    """Decode one file and run `encoder.prepare` on it; never raises on a bad file (the reason is kept instead).

    What every decode worker runs: a DataLoader worker here, a Ray task in `pipeline.index.distributed`.
    """
    try:
        image = load_rgb(path, limits)
        width, height = image.size
        return PreparedItem(index, encoder.prepare(image), width, height, "")
    except ImageDecodeError as e:
        return PreparedItem(index, None, 0, 0, str(e))
    except Exception as e:  # a bad file must never stop the run: keep the reason instead
        return PreparedItem(index, None, 0, 0, f"{type(e).__name__}: {e}")


class _PrepareDataset(Dataset[PreparedItem]):
    """`prepare_image` for one path; runs in worker processes. Never raises on bad files."""

    def __init__(self, paths: Sequence[str], encoder: Encoder, limits: DecodeLimits) -> None:
        self.paths = list(paths)
        self.encoder = encoder
        self.limits = limits

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> PreparedItem:
        return prepare_image(index, self.paths[index], self.encoder, self.limits)


def _collate(batch: list[PreparedItem]) -> list[PreparedItem]:
    return batch


def die_with_parent(parent_pid: int, worker_id: int = 0) -> None:
    """DataLoader `worker_init_fn`: the worker is killed when the process that started it dies (kill -9 included).

    Without it a killed ingest leaves its workers orphaned, each holding copies of the parent's open files (the
    embedded store's among them), so the next run finds the store in use. Linux `prctl(PR_SET_PDEATHSIG)`;
    elsewhere the worker relies on torch's own check of its parent.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def embed_paths(
    paths: Sequence[str], encoder: Encoder, device: torch.device, config: EmbedConfig
) -> Iterator[list[EmbeddedItem]]:
    """Embed images batch by batch; yields one list of results per batch, in input order.

    Decoding and `prepare` run in `config.workers` DataLoader processes while the main process runs
    `encoder.encode`; on CUDA the batches are pinned for asynchronous host-to-device copies.
    """
    dataset = _PrepareDataset(paths, encoder, DecodeLimits(max_pixels=config.max_pixels))
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=_collate,
        pin_memory=is_cuda(device),
        prefetch_factor=4 if config.workers > 0 else None,
        worker_init_fn=functools.partial(die_with_parent, os.getpid()),
    )
    for batch in loader:
        yield encode_prepared(batch, encoder)


def encode_prepared(batch: Sequence[PreparedItem], encoder: Encoder) -> list[EmbeddedItem]:
    """`encoder.encode` the items that were decoded, in one call; each input's result, in the batch's order.

    What every encoding process runs: the main process here, an encode actor in `pipeline.index.distributed`.
    """
    decoded = [p for p in batch if not p.error]
    encoded = encoder.encode([p.item for p in decoded]) if decoded else None
    by_index: dict[int, EmbeddedItem] = {}
    for row, p in enumerate(decoded):
        assert encoded is not None
        if encoded.ok[row]:
            by_index[p.index] = EmbeddedItem(
                p.index, "ok", encoded.vectors[row], encoded.notes[row] or "", p.width, p.height
            )
        else:
            reason = encoded.notes[row] or "encoder could not embed this image"
            by_index[p.index] = EmbeddedItem(p.index, "no_face", None, reason, p.width, p.height)
    for p in batch:
        if p.error:
            by_index[p.index] = EmbeddedItem(p.index, "failed", None, p.error)
    return [by_index[p.index] for p in batch]
