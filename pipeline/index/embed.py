"""Batched embedding with decode overlapped with the forward pass (DataLoader workers); one input's steps are in
`pipeline.index.prepared`."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.core.device import is_cuda
from pipeline.core.images import DecodeLimits
from pipeline.encoders.base import Encoder
from pipeline.index.prepared import EmbeddedItem, PreparedItem, encode_prepared, prepare_image

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class EmbedConfig:
    """Batching and worker settings for `embed_paths`."""

    batch_size: int = 32
    workers: int = 2
    max_pixels: int = 89_478_485


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
