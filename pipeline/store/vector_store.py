"""The store contract every command and protocol uses: collections with named vectors and an encoder catalog,
merging writes, reads, filtered and batched queries; built once over a backend's primitives."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.core.config import StoreConfig
from pipeline.core.errors import StoreError
from pipeline.core.records import Hit
from pipeline.store.backend import CollectionInfo, QueryBatch, StoreBackend
from pipeline.store.catalog import Catalog, check_specs, check_version
from pipeline.store.opening import open_backend
from pipeline.store.points import MergePlan, Point, StoreFilter, VectorSpec, check_collection_name
from pipeline.store.scoring import to_score


class VectorStore:
    """The contract over one backend, taken by injection (tests pass an edge store on a tmp dir, or qdrant-client's
    local mode as the stand-in for a server)."""

    def __init__(self, backend: StoreBackend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, config: StoreConfig) -> VectorStore:
        """The server at `config.url`, or the embedded store folder `config.path`.

        Raises:
            StoreError: the folder is in use by another process or holds a store to migrate first, or the server is
                unreachable.
        """
        return cls(open_backend(config))

    @property
    def kind(self) -> str:
        return self.backend.kind

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections and their catalog ---------------------------------------------------------------------------

    def list_collections(self) -> list[str]:
        return self.backend.list_collections()

    def has_collection(self, collection: str) -> bool:
        return self.backend.has_collection(collection)

    def info(self, collection: str) -> CollectionInfo:
        return self.backend.info(collection)

    def vector_specs(self, collection: str) -> dict[str, VectorSpec]:
        """The named vectors a collection holds.

        Raises:
            StoreError: no such collection, or it was not made by lookalike.
        """
        if not self.has_collection(collection):
            raise StoreError(f"no collection {collection!r} in this store; ingest into it first (lookalike ingest)")
        return self.backend.vector_specs(collection)

    def ensure_collection(
        self,
        collection: str,
        specs: Sequence[VectorSpec],
        encoders: Mapping[str, str] | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """Create the collection with these named vectors, or check an existing one holds them.

        `encoders` maps each vector name to the encoder spec that fills it, and `versions` to that encoder's
        version; both are kept in the collection's catalog, so later commands can rebuild the encoder without
        being told and refuse one whose embedding space has changed since.

        Raises:
            StoreError: a bad collection name, or the collection exists but was made with other encoders.
            EncoderVersionError: it was made with another version of one of the encoders.
        """
        check_collection_name(collection)
        if not self.has_collection(collection):
            self.backend.create_collection(collection, specs, Catalog(dict(encoders or {}), dict(versions or {})))
            return
        check_specs(collection, self.vector_specs(collection), specs)
        for name, version in (versions or {}).items():
            self.check_encoder_version(collection, name, (encoders or {}).get(name, name), version)

    def encoder_specs(self, collection: str) -> dict[str, str]:
        """Vector name → encoder spec string, as recorded when the collection was made."""
        return dict(self.backend.catalog(collection).encoders)

    def encoder_versions(self, collection: str) -> dict[str, str]:
        """Vector name → encoder version, as recorded when the collection was made ({} for older collections)."""
        return dict(self.backend.catalog(collection).versions)

    def check_encoder_version(self, collection: str, vector: str, encoder: str, version: str) -> None:
        """Refuse an encoder whose version differs from the one that filled `vector` (see `catalog.check_version`).

        Raises:
            EncoderVersionError: both versions are known and differ.
        """
        check_version(self.backend.catalog(collection), collection, vector, encoder, version)

    # -- writes ----------------------------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Write whole points, replacing any stored point with the same id (vectors and payload alike)."""
        self.backend.upsert(collection, points)

    def merge_points(self, collection: str, points: Sequence[Point]) -> None:
        """Write points without clobbering what other encoders stored in them; stored when this returns.

        New ids are written whole. For ids already stored, only the given named vectors are written and the given
        payload fields set, so a second encoder's pass keeps the first one's vectors; `missing_vectors` becomes the
        stored list plus `missing`, minus the vectors written now. Assumes one writer per collection at a time (the
        embedded store enforces it).

        The payload is written before the vectors. Where a backend cannot do both at once (the embedded engine has
        no batch update), a crash between them leaves a point whose payload no longer lists the new vector as
        missing but which lacks it: `present_ids` then reports it not done, and the next ingest writes it again.
        """
        if not points:
            return
        stored = self._missing_records(collection, [p.point_id for p in points])
        new = tuple(p for p in points if p.point_id not in stored)
        payloads = tuple(
            (p.point_id, {**p.payload, "missing_vectors": _still_missing(stored[p.point_id], p)})
            for p in points
            if p.point_id in stored
        )
        vectors = tuple((p.point_id, p.vectors) for p in points if p.point_id in stored and p.vectors)
        self.backend.apply_merge(collection, MergePlan(new, payloads, vectors))

    def _missing_records(self, collection: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """For each id already stored, the vector names recorded as missing (empty list when none)."""
        stored = self.payloads(collection, ids, ["missing_vectors"])
        return {pid: list(payload.get("missing_vectors") or []) for pid, payload in stored.items()}

    def set_payloads(self, collection: str, updates: Mapping[str, Mapping[str, Any]], batch: int = 500) -> None:
        """Merge payload fields into existing points (e.g. labels a later manifest supplies)."""
        items = list(updates.items())
        for start in range(0, len(items), batch):
            self.backend.set_payloads(collection, items[start : start + batch])

    def build_index(self, collection: str) -> bool:
        """Index the collection for fast search if it is large enough to gain from it (the embedded engine; a server
        indexes on its own). Returns whether anything was built."""
        return self.backend.build_index(collection)

    def flush(self) -> None:
        self.backend.flush()

    # -- reads -----------------------------------------------------------------------------------------------------

    def payloads(
        self, collection: str, ids: Sequence[str], keys: Sequence[str], batch: int = 1000
    ) -> dict[str, dict[str, Any]]:
        """The payload fields `keys` of each id that is stored (ids not stored are left out), `batch` ids a request."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), batch):
            for r in self.backend.retrieve(collection, ids[start : start + batch], list(keys), ()):
                found[r.point_id] = dict(r.payload)
        return found

    def present_ids(
        self, collection: str, ids: Sequence[str], vector: str, batch: int = 1000, retry_missing: bool = False
    ) -> set[str]:
        """Ids already done for `vector`: stored with that vector, or recorded as having none (no face) unless
        `retry_missing` (e.g. a second run with a no-face fallback should embed those again)."""
        found: set[str] = set()
        for start in range(0, len(ids), batch):
            for r in self.backend.retrieve(collection, ids[start : start + batch], ["missing_vectors"], [vector]):
                missing = r.payload.get("missing_vectors") or []
                if vector in r.vectors or (vector in missing and not retry_missing):
                    found.add(r.point_id)
        return found

    def get_points(self, collection: str, ids: Sequence[str], vector: str) -> dict[str, tuple[np.ndarray | None, dict]]:
        """Stored vector (or None) and payload for each id that exists."""
        records = self.backend.retrieve(collection, ids, True, [vector])
        return {r.point_id: (r.vectors.get(vector), dict(r.payload)) for r in records}

    def get_vectors(self, collection: str, ids: Sequence[str], vector: str) -> dict[str, np.ndarray]:
        """The stored `vector` of each id that exists and has one (no payloads are read)."""
        records = self.backend.retrieve(collection, ids, False, [vector])
        return {r.point_id: r.vectors[vector] for r in records if vector in r.vectors}

    def find_ids(self, collection: str, key: str, value: str, limit: int = 10) -> list[str]:
        """Ids of points whose payload `key` equals `value`."""
        records, _ = self.backend.scroll_page(collection, StoreFilter({key: value}), limit, None, ())
        return [r.point_id for r in records]

    def scroll(
        self, collection: str, vector: str | None = None, batch: int = 1000, flt: StoreFilter | None = None
    ) -> Iterator[tuple[str, np.ndarray | None, dict]]:
        """Every point as (id, vector or None, payload), in pages of `batch`."""
        offset = None
        vectors = [vector] if vector else []
        while True:
            records, offset = self.backend.scroll_page(collection, flt, batch, offset, vectors)
            for r in records:
                yield r.point_id, r.vectors.get(vector) if vector else None, dict(r.payload)
            if offset is None:
                return

    def count(self, collection: str, flt: StoreFilter | None = None) -> int:
        return self.backend.count(collection, flt)

    def query(
        self,
        collection: str,
        spec: VectorSpec,
        vectors: np.ndarray,
        k: int,
        filters: Sequence[StoreFilter | None] | StoreFilter | None = None,
        exact: bool = False,
        ef: int | None = None,
        with_payload: bool = True,
    ) -> list[list[Hit]]:
        """Top-k hits for each row of (Q, D) `vectors` — (Q, K, D) for a multivector — in batched requests; one
        filter for all, or one per row; `exact` scores every candidate instead of walking the HNSW graph, `ef` sets
        its search beam for these queries (None: the store's), `with_payload=False` leaves hits' payloads empty."""
        rows = np.asarray(vectors)
        rows = rows[None] if rows.ndim == (2 if spec.multivector else 1) else rows
        per_row = list(filters) if isinstance(filters, Sequence) else [filters] * len(rows)
        batch = QueryBatch(spec, list(rows), per_row, k, exact, ef, with_payload)
        raw = self.backend.query_batch(collection, batch)
        return [
            [
                Hit(
                    rank=i + 1,
                    score=to_score(spec.distance, h.raw_score, spec.dim),
                    point_id=h.point_id,
                    payload=dict(h.payload),
                )
                for i, h in enumerate(hits)
            ]
            for hits in raw
        ]

    def nearest(
        self, collection: str, spec: VectorSpec, vectors: np.ndarray, k: int, exact: bool = False, ef: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-k (point id, score) for each row of (Q, D) single `vectors`, best first: `query` without payloads or
        hit records, the lean path for building k-NN graphs over whole collections."""
        batch = QueryBatch(spec, list(vectors), [None] * len(vectors), k, exact, ef, with_payload=False)
        distance, dim = spec.distance, spec.dim
        hits = self.backend.query_batch(collection, batch)
        return [[(h.point_id, to_score(distance, h.raw_score, dim)) for h in row] for row in hits]


def _still_missing(recorded: Sequence[str], point: Point) -> list[str]:
    """The vector names a stored point lacks once `point` is merged: the recorded ones it does not now bring (nor
    re-record), then the ones it records as missing itself."""
    return [n for n in recorded if n not in point.vectors and n not in point.missing] + list(point.missing)
