"""Ingest on Ray: the runner and stages of a single-process ingest, with the heavy stages run by Ray.

`ingest_ray` runs `run_ingest` (the one ingest runner) with a `RayExecution`: each round's files are listed into a
Ray dataset and hashed in CPU tasks; the driver groups duplicates and checks the store (in batches, before any
decode), as every ingest does; the files left are decoded and `prepare`d in CPU tasks of a Ray Data pipeline whose
blocks stream into a pool of encode actors, each holding the encoder once (one GPU per actor where the cluster has
GPUs; the encoders use AMP on CUDA); the driver writes each batch as it comes back and accounts every input. So ids,
vectors, payloads, the summary and the report are those of a single-process ingest of the same files. An encoder
with no model (`has_model`: phash, and dlib, whose ResNet runs in `prepare`) is encoded in the decode tasks
themselves: an actor would only add a hop per block, and a process to start per run.

The actors are started with the run (they load the encoder while the first round is hashed) and serve every round;
a task that fails is retried and an actor that dies is restarted with its pending blocks (`RayConfig.retries`).

Ray is imported only when a Ray ingest runs (`pip install 'lookalike[ray]'`), by `pipeline.index.ray_session` (where
it runs, connecting); the worker side is `pipeline.index.ray_workers`. The files must be readable at the same paths
on every node (a shared file system) and lookalike installed there alike. The embedded store is written by the
driver, so it serves a Ray whose nodes are all on this machine; a cluster needs a Qdrant server (`--qdrant-url`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.core.config import IngestConfig
from pipeline.core.errors import LookalikeError, first_line
from pipeline.core.images import DecodeLimits
from pipeline.core.records import ImageRecord, IngestSummary
from pipeline.encoders.base import Encoder, has_model
from pipeline.index.hashing import FileHash
from pipeline.index.ingest import run_ingest
from pipeline.index.prepared import EmbeddedItem
from pipeline.index.ray_session import RayConfig, check_single_machine, ray_session
from pipeline.index.ray_workers import (
    EncodeActor,
    EncoderFactory,
    decode_rows,
    embed_rows,
    hash_rows,
    path_blocks,
    unpickled,
)
from pipeline.index.sources import SourceListing, SourceStream
from pipeline.store import VectorStore

IN_FLIGHT_PER_ACTOR = 2  # blocks sent to an actor before its first is back, so it never waits for the driver
BLOCKS_PER_CPU = 4  # decode blocks per CPU of the cluster at least, while a round has enough batches


@dataclass(frozen=True)
class RemoteEncoder:
    """An encoder as a Ray ingest uses it: `local` (on the driver, CPU) gives its name, size and version and is
    shipped to the decode tasks for `prepare` (encoders pickle without their model); `build` makes it once in each
    encode actor, on that actor's device. `build` must pickle (a module-level function or a `functools.partial`)."""

    local: Encoder
    build: EncoderFactory

    @classmethod
    def from_factory(cls, build: EncoderFactory) -> RemoteEncoder:
        """The driver's copy built on the CPU by `build` itself."""
        return cls(build(torch.device("cpu")), build)


def ingest_ray(
    listing: SourceListing | SourceStream,
    encoders: Sequence[RemoteEncoder],
    store: VectorStore,
    config: IngestConfig,
    ray_config: RayConfig,
    *,
    point_ids: bool = True,
) -> tuple[IngestSummary, ...]:
    """`ingest_all` run on Ray: the same points, payloads, summaries and report (see the module docstring).

    Raises:
        LookalikeError: Ray is not installed, the address has no cluster, or the embedded store was given with a
            cluster that has nodes on other machines; as `ingest_all` otherwise.
    """
    with ray_session(ray_config) as ray:
        if store.kind == "edge" and ray_config.address != "local":
            check_single_machine(ray, ray_config.address)
        limits = DecodeLimits(max_pixels=config.max_pixels)
        try:
            with RayExecution(ray, ray_config, config.batch_size, limits, encoders) as execution:
                return run_ingest(listing, [e.local for e in encoders], store, config, execution, point_ids=point_ids)
        except ray.exceptions.RayError as e:
            raise LookalikeError(
                f"the Ray run stopped ({type(e).__name__}: {first_line(e)}) after {ray_config.retries} retries; every "
                "batch written so far is kept: run the same command again to resume"
            ) from e


class RayExecution:
    """The heavy stages of `run_ingest` on Ray (a context manager: the encode actors live from entry to exit).

    Hashing is a Ray dataset of CPU tasks; embedding a Ray Data pipeline of decode tasks whose blocks go to the
    encoder's actors as they are produced. Results come back to the driver as they are done, in any order.
    """

    def __init__(
        self, ray: Any, config: RayConfig, batch_size: int, limits: DecodeLimits, encoders: Sequence[RemoteEncoder]
    ) -> None:
        self._ray = ray
        self.config = config
        self.batch_size = batch_size
        self.limits = limits
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if config.use_gpus else 0
        self._cpus = max(1, int(resources.get("CPU", 1)))
        modelled = [e for e in encoders if has_model(e.local)]
        self._pools = {
            e.local.name: _ActorPool(ray, e.build, config, batch_size, gpus, len(modelled)) for e in modelled
        }

    def __enter__(self) -> RayExecution:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self._pools.values():
            pool.close()

    @property
    def round_files(self) -> int:
        return self.config.round_files

    def hash(self, records: Sequence[ImageRecord]) -> Iterable[FileHash]:
        """`hash_file` of each record in CPU tasks, given back in the records' order."""
        results: dict[int, FileHash] = {}
        for table in self._map([r.path for r in records], hash_rows, {}, self.config.small_block_files).iter_batches(
            batch_size=None, batch_format="pyarrow"
        ):
            results.update(zip(table.column("index").to_pylist(), unpickled(table), strict=True))
        return [results[i] for i in range(len(records))]

    def embed(self, paths: Sequence[str], encoder: Encoder) -> Iterable[list[EmbeddedItem]]:
        """Decode + `prepare` in CPU tasks (with the driver's encoder, pickled without its model); each block of
        prepared items is encoded by one of the encoder's actors, or in the task for an encoder with no model; one
        list of results per batch."""
        if encoder.name not in self._pools:
            return self._embed_in_tasks(paths, encoder)
        kwargs = {"encoder": encoder, "limits": self.limits}
        decoded = self._map(paths, decode_rows, kwargs, self.batch_size * self.config.batches_per_block)
        blocks = (ref for bundle in decoded.iter_internal_ref_bundles() for ref in bundle.block_refs)
        return self._pools[encoder.name].encode(blocks)

    def _embed_in_tasks(self, paths: Sequence[str], encoder: Encoder) -> Iterator[list[EmbeddedItem]]:
        """Decode, `prepare` and encode in CPU tasks; each block's results, `batch_size` at a time."""
        size = self.batch_size
        kwargs = {"encoder": encoder, "limits": self.limits}
        tables = self._map(paths, embed_rows, kwargs, self.config.small_block_files)
        for table in tables.iter_batches(batch_size=None, batch_format="pyarrow"):
            items = unpickled(table)
            yield from (items[s : s + size] for s in range(0, len(items), size))

    def _map(self, paths: Sequence[str], task: Any, kwargs: dict[str, Any], block_files: int) -> Any:
        """A dataset of (index, path) rows mapped by `task` in CPU tasks, in blocks of whole batches (batched as a
        single-process ingest batches them), up to `block_files` files: fewer when the round is small, so that every
        CPU gets `BLOCKS_PER_CPU` blocks (300 dlib faces in 3 blocks of 128 kept one of 2 CPUs idle for a third of
        the run)."""
        spread = len(paths) // (BLOCKS_PER_CPU * self._cpus)
        per_block = self.batch_size * max(1, min(block_files, spread) // self.batch_size)
        with warnings.catch_warnings():  # Ray 2.60 warns that max_retries will become a named argument in 2.64
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._ray.data.from_arrow(path_blocks(paths, per_block)).map_batches(
                task,
                batch_size=self.batch_size,
                batch_format="pyarrow",
                fn_kwargs=kwargs,
                num_cpus=1,
                udf_modifying_row_count=False,
                max_retries=self.config.retries,
            )


class _ActorPool:
    """One encoder's actors: started at once (each loads the encoder while the run hashes), fed blocks of prepared
    items by object reference (the data goes from the decode task to the actor, not through the driver)."""

    def __init__(
        self, ray: Any, build: EncoderFactory, config: RayConfig, batch_size: int, gpus: int, encoders: int
    ) -> None:
        self._ray = ray
        remote = ray.remote(EncodeActor).options(
            num_cpus=config.actor_cpus,
            num_gpus=1 / encoders if gpus else 0,  # every encoder's actors fit on the GPUs together
            max_restarts=config.retries,
            max_task_retries=config.retries,
        )
        device = "cuda" if gpus else "cpu"
        self._actors = [remote.remote(build, device, batch_size) for _ in range(config.actors or max(1, gpus))]

    def encode(self, blocks: Iterable[Any]) -> Iterator[list[EmbeddedItem]]:
        """Each block to the least busy actor, at most `IN_FLIGHT_PER_ACTOR` each; batches as they come back."""
        pending: dict[Any, int] = {}
        load = [0] * len(self._actors)
        for block in blocks:
            while len(pending) >= IN_FLIGHT_PER_ACTOR * len(self._actors):
                yield from self._collect(pending, load)
            actor = min(range(len(load)), key=load.__getitem__)
            pending[self._actors[actor].encode_block.remote(block)] = actor
            load[actor] += 1
        while pending:
            yield from self._collect(pending, load)

    def _collect(self, pending: dict[Any, int], load: list[int]) -> Iterator[list[EmbeddedItem]]:
        """Wait for one block (raises the actor's error once its retries are spent)."""
        [done], _ = self._ray.wait(list(pending), num_returns=1)
        load[pending.pop(done)] -= 1
        yield from self._ray.get(done)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
