"""Frozen configs built once at the CLI edge."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
class StoreConfig:
    """Where vectors live: an embedded Qdrant folder, or a server when `url` is set."""

    path: str = DEFAULT_STORE_PATH
    url: str | None = None
    api_key: str | None = None
    timeout_s: int = 60
    hnsw_ef: int = DEFAULT_HNSW_EF  # search-time beam of HNSW queries (recall against speed)
    min_free_mb: int = DEFAULT_MIN_FREE_MB  # embedded store: free disk below which writes are refused

    @classmethod
    def from_env(cls, path: str | None = None, url: str | None = None, api_key: str | None = None) -> StoreConfig:
        """Options win over `LOOKALIKE_STORE`, `QDRANT_URL`, `QDRANT_API_KEY`, `LOOKALIKE_HNSW_EF`,
        `LOOKALIKE_MIN_FREE_MB`, which win over defaults.

        Raises:
            LookalikeError: `LOOKALIKE_HNSW_EF` is not a whole number ≥ 1, or `LOOKALIKE_MIN_FREE_MB` not one ≥ 64.
        """
        return cls(
            path=path or os.environ.get("LOOKALIKE_STORE") or DEFAULT_STORE_PATH,
            url=url or os.environ.get("QDRANT_URL") or None,
            api_key=api_key or os.environ.get("QDRANT_API_KEY") or None,
            hnsw_ef=_env_int("LOOKALIKE_HNSW_EF", DEFAULT_HNSW_EF, lowest=1),
            min_free_mb=_env_int("LOOKALIKE_MIN_FREE_MB", DEFAULT_MIN_FREE_MB, lowest=MIN_FREE_FLOOR_MB),
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
