"""What goes into and comes out of a store, as plain data: named-vector specs, points, records and lookalike's own
filter (each backend translates it into its engine's filter)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.errors import StoreError
from pipeline.core.records import Distance

INDEXED_FIELDS = ("path", "label", "group", "sha256")  # payload keys both backends index (keyword)
_ID_NAMESPACE = uuid.UUID("5f0c7a52-3b7e-4c1e-9f5e-6c6f6f6b616c")
# Collection names become folder names in the embedded store and URL parts on a server: one safe grammar for both.
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+=-]{0,199}")


def point_id_for(sha256: str) -> str:
    """Deterministic point id: uuid5 of the content hash, so re-runs are idempotent."""
    return str(uuid.uuid5(_ID_NAMESPACE, sha256))


def check_collection_name(name: str) -> str:
    """The name, if it is a valid collection name (letters, digits and `_ . : @ + = -`, not starting with `.` or
    `-`, at most 200 characters).

    Raises:
        StoreError: anything else (an empty name, `.`, `..`, a path with `/`).
    """
    if not _COLLECTION_NAME.fullmatch(name):
        raise StoreError(
            f"collection name {name!r} is not allowed: use letters, digits and _ . : @ + = - "
            "(not starting with . or -, at most 200 characters)"
        )
    return name


@dataclass(frozen=True)
class VectorSpec:
    """One named vector of a collection, as an encoder declares it; a multivector holds a set of `dim`-vectors per
    point, compared by MAX_SIM (the sum over query vectors of the best `distance` score among the point's)."""

    name: str
    dim: int
    distance: Distance
    multivector: bool = False

    def describe(self) -> str:
        """`512-d cosine`, `64-d dot multivector`: for messages."""
        return f"{self.dim}-d {self.distance}" + (" multivector" if self.multivector else "")


@dataclass(frozen=True)
class Point:
    """A point to write; `vectors` may be empty when no encoder could embed the image.

    `missing` names the vectors an encoder could not make for this image (no face found); `merge_points`
    records them in the payload key `missing_vectors`, merged with what earlier passes recorded.
    """

    point_id: str
    vectors: Mapping[str, np.ndarray]
    payload: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    def stored_payload(self) -> dict[str, Any]:
        """The payload a whole-point write stores: `missing` goes into the key `missing_vectors`."""
        return {**self.payload, "missing_vectors": list(self.missing)} if self.missing else dict(self.payload)


@dataclass(frozen=True)
class StoredRecord:
    """A point as a backend returns it: its id, the named vectors asked for that it has, and its payload."""

    point_id: str
    vectors: Mapping[str, np.ndarray]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class RawHit:
    """One scored point as the engine reports it (the raw score; `scoring.to_score` makes it a similarity)."""

    point_id: str
    raw_score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class StoreFilter:
    """lookalike's own filter: payload fields equal to values (all must hold), restricted to `ids` when given, and
    never one of `exclude_ids`. Each backend translates it for its engine."""

    match: Mapping[str, str | int] = field(default_factory=dict)
    ids: frozenset[str] | None = None
    exclude_ids: frozenset[str] = frozenset()

    def is_empty(self) -> bool:
        return not self.match and self.ids is None and not self.exclude_ids


@dataclass(frozen=True)
class MergePlan:
    """The writes of one `merge_points` call, in lookalike's terms; a backend applies them in this order:
    new points whole, then payload fields of stored points, then their new vectors (see `VectorStore.merge_points`
    for why this order is safe to interrupt)."""

    new_points: tuple[Point, ...]
    payloads: tuple[tuple[str, Mapping[str, Any]], ...]
    vectors: tuple[tuple[str, Mapping[str, np.ndarray]], ...]


def where_filter(conditions: Mapping[str, str | int] | None, exclude_ids: Sequence[str] = ()) -> StoreFilter | None:
    """A filter from `key=value` conditions (all must match), optionally excluding point ids; None when empty."""
    flt = StoreFilter(dict(conditions or {}), None, frozenset(exclude_ids))
    return None if flt.is_empty() else flt


def only_ids(ids: Sequence[str]) -> StoreFilter:
    """A filter that restricts a query to these point ids (e.g. a task's own candidates)."""
    return StoreFilter(ids=frozenset(ids))


def float_lists(vector: np.ndarray) -> list[Any]:
    """A vector (or a set of vectors) as the nested float lists both engines take."""
    return list(np.asarray(vector, dtype=np.float32).tolist())


def group_payloads(updates: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[list[str], dict[str, Any]]]:
    """Payload updates grouped by identical content, so each distinct payload is one write for all its ids."""
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for pid, fields in updates:
        key = repr(sorted(fields.items()))
        groups.setdefault(key, ([], dict(fields)))[0].append(pid)
    return list(groups.values())
