"""Stores for tests: one per backend, opened the same way everywhere."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient

from pipeline.store import VectorStore
from pipeline.store.edge import EdgeBackend
from pipeline.store.server import ServerBackend

STORE_KINDS = ("edge", "server")


def open_test_store(kind: str, folder: Path) -> VectorStore:
    """An empty store of one backend: the embedded engine in `folder`, or qdrant-client's local mode (in memory) as
    the stand-in for a server (no server binary can be installed here)."""
    if kind == "edge":
        return VectorStore(EdgeBackend(folder))
    return VectorStore(ServerBackend(QdrantClient(":memory:"), "qdrant-client local mode", remote=False))
