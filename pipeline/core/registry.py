"""The one registry style: names → (info, constructor), in registration order, for encoders and losses alike.

A family registers itself once with what users see of it (`info`) and how to build it (`factory`); the one factory
function of each kind (`create_encoder`, `create_loss`) looks the name up and injects the collaborators.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 — the info type
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[K, I, F]):
    """Entries keyed by name; `kind` names them in messages ("encoder family", "loss")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[K, tuple[I, F]] = {}

    def register(self, name: K, info: I, factory: F) -> None:
        """Add an entry; a second registration of the same name is a programming error.

        Raises:
            ValueError: `name` is registered already.
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = (info, factory)

    def infos(self) -> list[I]:
        """Every entry's info, in registration order."""
        return [info for info, _ in self._entries.values()]

    def names(self) -> list[K]:
        return list(self._entries)

    def get(self, name: K) -> tuple[I, F] | None:
        """The entry's (info, factory), or None when nothing registered `name`."""
        return self._entries.get(name)
