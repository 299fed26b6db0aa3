"""Pipeline-level fixtures: a tiny injected encoder and an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import TinyEncoder
from qdrant_client import QdrantClient

from pipeline.store import VectorStore


@pytest.fixture
def tiny_encoder() -> TinyEncoder:
    return TinyEncoder()


@pytest.fixture
def memory_store() -> Iterator[VectorStore]:
    store = VectorStore(QdrantClient(":memory:"))
    yield store
    store.close()
