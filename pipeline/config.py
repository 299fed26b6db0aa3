"""Frozen configs built once at the CLI edge."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORE_PATH = ".lookalike/qdrant"


@dataclass(frozen=True)
class StoreConfig:
    """Where vectors live: an embedded Qdrant folder, or a server when `url` is set."""

    path: str = DEFAULT_STORE_PATH
    url: str | None = None
    api_key: str | None = None
    timeout_s: int = 60

    @classmethod
    def from_env(cls, path: str | None = None, url: str | None = None, api_key: str | None = None) -> StoreConfig:
        """Options win over `LOOKALIKE_STORE`, `QDRANT_URL`, `QDRANT_API_KEY`, which win over defaults."""
        return cls(
            path=path or os.environ.get("LOOKALIKE_STORE") or DEFAULT_STORE_PATH,
            url=url or os.environ.get("QDRANT_URL") or None,
            api_key=api_key or os.environ.get("QDRANT_API_KEY") or None,
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
