"""What runs in Ray's worker processes during a Ray ingest: the hash and decode tasks and the encode actor, each a
thin wrapper of the stage every ingest runs (`hash_file`, `prepare_image`, `encode_prepared`); for an encoder with no
model (`has_model`), the decode task encodes too.

Imports neither Ray nor the store, so that a worker process starts fast; `pipeline.index.distributed` schedules
these. Rows travel as Arrow tables of an `index` (into the round's files) and a pickled `data` object.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.core.images import DecodeLimits
from pipeline.encoders.base import Encoder
from pipeline.index.hashing import hash_file
from pipeline.index.prepared import EmbeddedItem, encode_prepared, prepare_image

if TYPE_CHECKING:
    import torch

EncoderFactory = Callable[["torch.device"], Encoder]


def path_blocks(paths: Sequence[str], per_block: int) -> list[pa.Table]:
    """(index, path) tables of `per_block` rows each (the last may be shorter); paths as bytes, so names that are
    not UTF-8 travel unchanged."""
    table = pa.table({"index": pa.array(range(len(paths)), pa.int64()), "path": [os.fsencode(p) for p in paths]})
    return [table.slice(start, per_block) for start in range(0, len(paths), per_block)] or [table]


def unpickled(table: pa.Table) -> list[Any]:
    """The `data` objects of a table, in row order."""
    return [pickle.loads(blob) for blob in table.column("data").to_pylist()]


def _table(indices: Sequence[int], objects: Iterable[object]) -> pa.Table:
    blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in objects]
    return pa.table({"index": pa.array(indices, pa.int64()), "data": pa.array(blobs, pa.binary())})


def _paths(batch: pa.Table) -> tuple[list[int], list[str]]:
    return batch.column("index").to_pylist(), [os.fsdecode(p) for p in batch.column("path").to_pylist()]


def hash_rows(batch: pa.Table) -> pa.Table:
    """Task: `hash_file` of each row's path."""
    indices, paths = _paths(batch)
    return _table(indices, (hash_file(p) for p in paths))


def decode_rows(batch: pa.Table, encoder: Encoder, limits: DecodeLimits) -> pa.Table:
    """Task: `prepare_image` of each row's path (never raises on a bad file: its reason travels instead)."""
    indices, paths = _paths(batch)
    return _table(indices, (prepare_image(i, p, encoder, limits) for i, p in zip(indices, paths, strict=True)))


def embed_rows(batch: pa.Table, encoder: Encoder, limits: DecodeLimits) -> pa.Table:
    """Task: `prepare_image` of each row's path, then `encode_prepared` of the batch (one ingest batch: the rows
    Ray Data gives a call), for an encoder with no model, whose `encode` needs no actor."""
    indices, paths = _paths(batch)
    prepared = [prepare_image(i, p, encoder, limits) for i, p in zip(indices, paths, strict=True)]
    return _table(indices, encode_prepared(prepared, encoder))


class EncodeActor:
    """Actor: one encoder, built once on `device` (the actor's GPU where it was given one), encoding blocks of
    prepared items `batch_size` at a time."""

    def __init__(self, build: EncoderFactory, device: str, batch_size: int) -> None:
        import torch  # here: the hash and decode tasks of an encoder with no model run without it

        self.encoder = build(torch.device(device))
        self.batch_size = batch_size

    def encode_block(self, block: pa.Table) -> list[list[EmbeddedItem]]:
        """`encode_prepared` of a block's items, one list of results per batch."""
        prepared = unpickled(block)
        size = self.batch_size
        return [encode_prepared(prepared[s : s + size], self.encoder) for s in range(0, len(prepared), size)]
