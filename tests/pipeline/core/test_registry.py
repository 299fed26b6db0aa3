"""The shared registry behind encoders and losses: order, lookups, double registration."""

from __future__ import annotations

import pytest

from pipeline.core.registry import Registry


def test_entries_keep_registration_order_and_are_found_by_name() -> None:
    registry: Registry[str, str, type[int]] = Registry("widget")
    registry.register("b", "second letter", int)
    registry.register("a", "first letter", bool)
    assert registry.names() == ["b", "a"] and registry.infos() == ["second letter", "first letter"]
    assert registry.get("a") == ("first letter", bool) and registry.get("c") is None


def test_a_name_registers_once() -> None:
    registry: Registry[str, str, type[int]] = Registry("widget")
    registry.register("a", "x", int)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register("a", "y", int)
    assert registry.get("a") == ("x", int)
