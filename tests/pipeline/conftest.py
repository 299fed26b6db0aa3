"""Pipeline-level fixtures: a tiny injected encoder (the stores are in tests/conftest.py)."""

from __future__ import annotations

import pytest
from fakes import TinyEncoder


@pytest.fixture
def tiny_encoder() -> TinyEncoder:
    return TinyEncoder()
