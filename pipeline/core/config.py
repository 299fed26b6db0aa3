"""Frozen configs built once at the CLI edge."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from pipeline.core.errors import LookalikeError

DEFAULT_STORE_PATH = ".lookalike/qdrant"
DEFAULT_HNSW_EF = 128  # recall@10 ≥ 0.99 at 50k–200k × 128/512 (benchmarks/store_bench.py)
DEFAULT_MIN_FREE_MB = 256  # the embedded engine stops writing below this much free disk (LOOKALIKE_MIN_FREE_MB)
MIN_FREE_FLOOR_MB = 64  # an open shard's write-ahead log is two sparse 32 MiB files: less and the engine may crash


def signing_key_path() -> Path:
    """Where the key that signs move manifests lives: `LOOKALIKE_KEY_FILE`, else
    `$XDG_CONFIG_HOME/lookalike/manifest.key` (`~/.config/lookalike/manifest.key`)."""
    if explicit := os.environ.get("LOOKALIKE_KEY_FILE"):
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "lookalike" / "manifest.key"


def _env_int(name: str, default: int, lowest: int) -> int:
    text = os.environ.get(name) or str(default)
    if not text.isdigit() or int(text) < lowest:
        raise LookalikeError(f"{name}={text!r}: expected a whole number ≥ {lowest} (default {default})")
    return int(text)


@dataclass(frozen=True)
class ClusterLayout:
    """How a Qdrant server or cluster spreads a collection it creates over its nodes (Qdrant's `shard_number`,
    `replication_factor`, `write_consistency_factor`); None leaves the server's default, 1 each. Fixed when the
    collection is created: an existing collection keeps the layout it was made with.

    Attributes:
        shards: parts each collection is split into, spread over the nodes.
        replicas: copies of each shard, each on another node (from 2 on, a node can fail without losing data).
        write_consistency: copies of a shard that must apply a write before the server acknowledges it.
    """

    shards: int | None = None
    replicas: int | None = None
    write_consistency: int | None = None

    @property
    def is_default(self) -> bool:
        """Nothing set: the request a single node always got."""
        return self.first_set() is None

    def first_set(self) -> str | None:
        """The first setting that is not left to the server (for messages), else None."""
        return next((f.name for f in fields(self) if getattr(self, f.name) is not None), None)

    def check(self) -> None:
        """Refuse a layout no server could keep.

        Raises:
            LookalikeError: a value below 1, or a write consistency above the replicas of a shard.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 1:
                raise LookalikeError(f"{f.name.replace('_', ' ')} {value}: expected a whole number ≥ 1", setting=f.name)
        replicas = self.replicas or 1
        if self.write_consistency is not None and self.write_consistency > replicas:
            raise LookalikeError(
                f"write consistency {self.write_consistency} is more than the {replicas} "
                f"{'replica' if replicas == 1 else 'replicas'} of each shard, so no write could ever be acknowledged: "
                "lower it, or raise the replicas",
                setting="write_consistency",
            )


@dataclass(frozen=True)
class StoreConfig:
    """Where vectors live: an embedded Qdrant folder, or a server when `url` is set (with the layout of the
    collections it creates there)."""

    path: str = DEFAULT_STORE_PATH
    url: str | None = None
    api_key: str | None = None
    timeout_s: int = 60
    hnsw_ef: int = DEFAULT_HNSW_EF  # search-time beam of HNSW queries (recall against speed)
    min_free_mb: int = DEFAULT_MIN_FREE_MB  # embedded store: free disk below which writes are refused
    layout: ClusterLayout = field(default_factory=ClusterLayout)  # server: how new collections are spread

    def __post_init__(self) -> None:
        """Refuse a layout no server could keep, and any layout for the embedded store.

        Raises:
            LookalikeError: naming the layout setting at fault.
        """
        self.layout.check()
        setting = self.layout.first_set()
        if setting is not None and not self.url:
            raise LookalikeError(
                f"{setting.replace('_', ' ')} {getattr(self.layout, setting)}: a setting of a Qdrant server or "
                "cluster (how it spreads a collection over its nodes); the embedded store keeps each collection in "
                "one shard on this machine: give the server's URL (QDRANT_URL), or leave it out",
                setting=setting,
            )

    @classmethod
    def from_env(
        cls,
        path: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        layout: ClusterLayout | None = None,
    ) -> StoreConfig:
        """Options win over `LOOKALIKE_STORE`, `QDRANT_URL`, `QDRANT_API_KEY`, `LOOKALIKE_HNSW_EF`,
        `LOOKALIKE_MIN_FREE_MB`, which win over defaults.

        Raises:
            LookalikeError: `LOOKALIKE_HNSW_EF` is not a whole number ≥ 1, or `LOOKALIKE_MIN_FREE_MB` not one ≥ 64;
                a `layout` no server could keep, or one without a server URL.
        """
        return cls(
            path=path or os.environ.get("LOOKALIKE_STORE") or DEFAULT_STORE_PATH,
            url=url or os.environ.get("QDRANT_URL") or None,
            api_key=api_key or os.environ.get("QDRANT_API_KEY") or None,
            hnsw_ef=_env_int("LOOKALIKE_HNSW_EF", DEFAULT_HNSW_EF, lowest=1),
            min_free_mb=_env_int("LOOKALIKE_MIN_FREE_MB", DEFAULT_MIN_FREE_MB, lowest=MIN_FREE_FLOOR_MB),
            layout=layout or ClusterLayout(),
        )

    @property
    def is_server(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        """Where the store is, for messages."""
        return f"Qdrant server {self.url}" if self.url else f"embedded Qdrant at {Path(self.path).resolve()}"


@dataclass(frozen=True)
class IngestConfig:
    """How `ingest` reads, batches and reports."""

    collection: str
    batch_size: int = 32
    workers: int = 2
    max_pixels: int = 89_478_485
    hash_threads: int = 8
    report_path: Path | None = None
    progress: bool = True
    retry_missing: bool = False  # embed again images stored without a vector (no face found on an earlier run)
