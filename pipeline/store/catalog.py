"""The encoder catalog of a collection (which encoder spec and version fills each named vector) and the rules that
refuse mixing embedding spaces; both backends keep it, each in its own place, and apply these same rules."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import EncoderVersionError, StoreError
from pipeline.core.files import write_bytes_atomic
from pipeline.core.records import UNKNOWN_VERSION
from pipeline.store.points import VectorSpec


class LegacyCollectionWarning(UserWarning):
    """A collection made before encoder versions were recorded: its vectors are assumed to match."""


@dataclass(frozen=True)
class Catalog:
    """Vector name → encoder spec, and vector name → encoder version ({} for collections made before versions)."""

    encoders: Mapping[str, str] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        """The collection-metadata form (`{"lookalike": {...}}`), as earlier lookalike versions wrote it."""
        return {"lookalike": {"encoders": dict(self.encoders), "versions": dict(self.versions)}}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> Catalog:
        """Read the metadata form; missing keys (older collections) read as empty."""
        own = (metadata or {}).get("lookalike") or {}
        return cls(dict(own.get("encoders") or {}), dict(own.get("versions") or {}))


def check_specs(collection: str, have: Mapping[str, VectorSpec], wanted: Sequence[VectorSpec]) -> None:
    """Refuse to write vectors a collection was not made for.

    Raises:
        StoreError: one of `wanted` is not among `have` with the same size, distance and kind.
    """
    for spec in wanted:
        if have.get(spec.name) != spec:
            raise StoreError(
                f"collection {collection!r} was made with encoder(s) {', '.join(sorted(have))}, not {spec.name} "
                f"({spec.describe()}); use another collection for this encoder",
                setting="collection",
            )


def check_version(catalog: Catalog, collection: str, vector: str, encoder: str, version: str) -> None:
    """Refuse to mix an encoder's vectors with a collection's `vector` made by another version of it.

    A collection that recorded no version (made before versions were) or an encoder without one is accepted,
    with a `LegacyCollectionWarning` for the former (Python shows each distinct warning once).

    Raises:
        EncoderVersionError: both versions are known and differ.
    """
    stored = catalog.versions.get(vector, UNKNOWN_VERSION)
    if stored == version or version == UNKNOWN_VERSION:
        return
    if stored == UNKNOWN_VERSION:
        warnings.warn(
            f"collection {collection!r} records no encoder version (made before lookalike recorded them): its "
            f"{encoder} vectors are assumed to match version {version}; re-ingest into a new collection if the "
            "encoder changed since",
            LegacyCollectionWarning,
            stacklevel=3,
        )
        return
    raise EncoderVersionError(
        f"collection {collection!r} holds {encoder} vectors from encoder version {stored}, but this {encoder} is "
        f"version {version} (its behaviour or weights changed, so the vectors would not compare); re-ingest "
        "into a new collection",
        setting="collection",
    )


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never a torn one."""
    write_bytes_atomic(path, json.dumps(data, indent=1).encode("utf-8"))


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`.

    Raises:
        StoreError: the file is unreadable or not a JSON object (named, with `what` it is).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{what} {path} is unreadable ({e}); the store is damaged") from e
    if not isinstance(data, dict):
        raise StoreError(f"{what} {path} is not a JSON object; the store is damaged")
    return data
