"""Which backend a store config opens: a server when a URL is given, else the embedded folder, refusing a folder
that an earlier lookalike wrote with qdrant-client's local mode until `lookalike store migrate` has moved it."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.config import StoreConfig
from pipeline.core.errors import StoreError
from pipeline.store.backend import StoreBackend
from pipeline.store.edge import EdgeBackend
from pipeline.store.server import ServerBackend

LEGACY_META = "meta.json"  # qdrant-client local mode's catalogue of its collections


def legacy_collections(folder: Path) -> list[str]:
    """Collections an earlier lookalike stored in `folder` through qdrant-client's local mode ([] if none).

    Raises:
        StoreError: its `meta.json` is unreadable (the old store is damaged).
    """
    meta = folder / LEGACY_META
    if not meta.is_file():
        return []
    try:
        collections = json.loads(meta.read_text(encoding="utf-8")).get("collections") or {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise StoreError(f"the old store file {meta} is unreadable ({e}); it cannot be migrated") from e
    return sorted(collections)


def open_backend(config: StoreConfig) -> StoreBackend:
    """Connect to `config.url` (collections created there get `config.layout`), or lock and open the embedded folder
    `config.path`.

    Raises:
        StoreError: the server is unreachable; the folder is in use by another process, or still holds collections
            in the old format (the message gives the migrate command).
    """
    if config.url:
        return ServerBackend.connect(config.url, config.api_key, config.timeout_s, config.hnsw_ef, config.layout)
    folder = Path(config.path)
    backend = EdgeBackend(folder, config.hnsw_ef, min_free_bytes=config.min_free_mb * 2**20)
    try:
        old = legacy_collections(folder)
    except StoreError:
        backend.close()
        raise
    if old:
        backend.close()
        raise StoreError(
            f"{folder} holds {len(old)} collection(s) in the format of earlier lookalike versions (qdrant-client "
            f"local mode: {', '.join(old)}); move them to the embedded engine once with: lookalike store migrate "
            f"--store {folder}"
        )
    return backend
