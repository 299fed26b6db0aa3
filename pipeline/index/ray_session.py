"""Ray, connected for an ingest: where it runs and how its work is cut (`RayConfig`), the session that starts or joins
it with Ray Data set up for lookalike's pipelines, and the checks made on connecting.

Ray is imported only when a Ray ingest runs (`pip install 'lookalike[ray]'`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import LookalikeError
from pipeline.index.ingest import ROUND_FILES

INSTALL_HINT = "pip install 'lookalike[ray]'"


@dataclass(frozen=True)
class RayConfig:
    """Where a Ray ingest runs and how its work is cut.

    Attributes:
        address: "local" starts a Ray on this machine for the run (or uses the one this process started already);
            "auto" joins the running cluster (RAY_ADDRESS, or `ray start` on this machine); else a cluster address,
            `ray://host:10001` or `host:6379`.
        cpus: with "local", the CPUs Ray may use, i.e. hash and decode tasks at once (None: all of them).
        actors: encode actors per encoder (None: one per GPU of the cluster, else one).
        actor_cpus: CPUs each encode actor reserves; 0 leaves the CPUs to decoding (encoders whose work is in
            `prepare`: phash, dlib; or on a GPU). Raise it for a CPU-only encoder heavy in `encode` (CLIP on CPU).
        use_gpus: give each actor a GPU when the cluster has some (a GPU shared by the encoders' actors when
            several encoders run: their passes take turns).
        round_files: files per round (listed, hashed, checked and embedded before the next are read); larger than a
            single-process round, as the pipeline fills and drains once a round.
        retries: how often a failed task is retried and a dead actor restarted (its pending blocks sent again)
            before the run fails; a re-run then resumes where it stopped.
        batches_per_block: batches per block (a task's work) of prepared items sent to an encode actor; more means
            less overhead, coarser balancing and larger objects (CLIP's prepared images are 0.6 MB each).
        small_block_files: files per block of a task whose results are small: hashes, or the vectors of an encoder
            with no model. Each block costs Ray Data time: 18,032 files through phash's decode tasks on 2 CPUs took
            7.9 s in blocks of 128, 6.9 s in blocks of 512 or 1,024 (`benchmarks/ray_overheads.py`).
    """

    address: str = "local"
    cpus: int | None = None
    actors: int | None = None
    actor_cpus: float = 0.0
    use_gpus: bool = True
    round_files: int = 8 * ROUND_FILES
    retries: int = 3
    batches_per_block: int = 4
    small_block_files: int = 512


def import_ray() -> Any:
    """The `ray` module, with Ray Data. Raises LookalikeError (with the install command) when it is missing."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise LookalikeError(
            f"ingest on Ray needs Ray Data ({e}); install it with: {INSTALL_HINT}", setting="ray"
        ) from e
    return ray


@contextmanager
def ray_session(config: RayConfig) -> Iterator[Any]:
    """Ray, connected for the run: a Ray this process started already is used as it is (and left running);
    otherwise one is started ("local") or joined, and shut down (left) at the end. Ray Data's own progress bars
    and console logs are off meanwhile (the ingest shows its own; Ray Data's log file keeps its messages).

    Raises:
        LookalikeError: Ray is missing, or nothing answers at the address.
    """
    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    # Each pipeline has one operator (the decode tasks); Ray Data's per-operator reservation held it back on 2 CPUs:
    # 2,000 phash images in 1.58 s with it, 1.03 s without (`benchmarks/ray_overheads.py`).
    context.op_resource_reservation_enabled = False
    with _console_errors_only(logging.getLogger("ray.data")):
        if ray.is_initialized():
            yield ray
            return
        _connect(ray, config)
        try:
            yield ray
        finally:
            ray.shutdown()


def _connect(ray: Any, config: RayConfig) -> None:
    """Start a local Ray or join a cluster. Raises LookalikeError when nothing answers at the address."""
    try:
        if config.address == "local":
            ray.init(num_cpus=config.cpus, include_dashboard=False, logging_level="WARNING")
        else:
            ray.init(address=config.address, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise LookalikeError(
            f"Ray cluster {config.address!r}: cannot connect ({e}); start one with `ray start --head`, give its "
            "address (ray://host:10001), or run a local Ray ('local')",
            setting="ray",
        ) from e


@contextmanager
def _console_errors_only(logger: logging.Logger) -> Iterator[None]:
    """Only errors of `logger` reach the console (stream handlers) meanwhile; its other handlers are untouched."""
    consoles = [
        h for h in logger.handlers if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    levels = [h.level for h in consoles]
    for handler in consoles:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler, level in zip(consoles, levels, strict=True):
            handler.setLevel(level)


def check_single_machine(ray: Any, address: str) -> None:
    """Raises LookalikeError when some node of the cluster is on another machine than this process."""
    here = ray.util.get_node_ip_address()
    elsewhere = sorted({n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")} - {here})
    if elsewhere:
        raise LookalikeError(
            f"Ray cluster {address!r} has nodes on other machines ({', '.join(elsewhere)}), and the embedded "
            "store can only be written from this one; ingest into a Qdrant server",
            setting="qdrant_url",
        )
