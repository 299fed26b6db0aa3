"""Map test fixtures: the synthetic collection of `map_collection`, in each store backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from map_collection import Synthetic, make_collection

from pipeline.store import VectorStore


@pytest.fixture
def synthetic(vector_store: VectorStore, tmp_path: Path) -> Synthetic:
    return make_collection(vector_store, tmp_path / "imgs")
