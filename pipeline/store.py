"""The one Qdrant adapter: embedded folder or server, through the same client calls."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from pipeline.config import StoreConfig
from pipeline.errors import EncoderVersionError, StoreError
from pipeline.records import UNKNOWN_VERSION, Hit
from pipeline.store_points import (
    QDRANT_DISTANCES,
    Point,
    VectorSpec,
    point_struct,
    to_score,
    vector_lists,
    vector_params,
)

_INDEXED_FIELDS = ("path", "label", "group", "sha256")


class LegacyCollectionWarning(UserWarning):
    """A collection made before encoder versions were recorded: its vectors are assumed to match."""


class VectorStore:
    """Thin wrapper over a QdrantClient; takes the client by injection (tests pass `:memory:`)."""

    def __init__(self, client: QdrantClient, server: bool = False) -> None:
        self.client = client
        self.server = server

    @classmethod
    def open(cls, config: StoreConfig) -> VectorStore:
        """Connect to a server (`config.url`) or open the embedded folder.

        Raises:
            StoreError: the embedded folder is locked by another process, or the server is unreachable.
        """
        if config.url:
            client = QdrantClient(url=config.url, api_key=config.api_key, timeout=config.timeout_s)
            try:
                client.get_collections()
            except Exception as e:
                raise StoreError(
                    f"cannot reach Qdrant server at {config.url}: {e} (is it running? docker compose up -d)"
                ) from e
            return cls(client, server=True)
        try:
            return cls(QdrantClient(path=config.path))
        except RuntimeError as e:
            if "already accessed" in str(e):
                raise StoreError(
                    f"embedded store {config.path} is in use by another lookalike process; wait for it, use "
                    "another --store path, or run a Qdrant server (docker compose up -d) and pass --qdrant-url"
                ) from e
            raise

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_collection(self, collection: str) -> bool:
        return bool(self.client.collection_exists(collection))

    def vector_specs(self, collection: str) -> dict[str, VectorSpec]:
        """The named vectors a collection holds.

        Raises:
            StoreError: no such collection, or it uses an unnamed vector (not made by lookalike).
        """
        if not self.has_collection(collection):
            raise StoreError(f"no collection {collection!r} in this store; ingest into it first (lookalike ingest)")
        vectors = self.client.get_collection(collection).config.params.vectors
        if not isinstance(vectors, dict):
            raise StoreError(f"collection {collection!r} has an unnamed vector: it was not made by lookalike")
        inverse = {v: k for k, v in QDRANT_DISTANCES.items()}
        return {
            name: VectorSpec(name, p.size, inverse[p.distance], p.multivector_config is not None)
            for name, p in vectors.items()
        }

    def ensure_collection(
        self,
        collection: str,
        specs: Sequence[VectorSpec],
        encoders: Mapping[str, str] | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """Create the collection with these named vectors, or check an existing one holds them.

        `encoders` maps each vector name to the encoder spec that fills it, and `versions` to that encoder's
        version; both are kept in the collection's metadata, so later commands can rebuild the encoder without
        being told and refuse one whose embedding space has changed since.

        Raises:
            StoreError: the collection exists but was made with other encoders (name, size or distance differ).
            EncoderVersionError: it was made with another version of one of the encoders.
        """
        if not self.has_collection(collection):
            config = {s.name: vector_params(s) for s in specs}
            metadata = {"lookalike": {"encoders": dict(encoders or {}), "versions": dict(versions or {})}}
            self.client.create_collection(collection, vectors_config=config, metadata=metadata)
            if self.server:
                for key in _INDEXED_FIELDS:
                    self.client.create_payload_index(collection, key, models.PayloadSchemaType.KEYWORD)
            return
        have = self.vector_specs(collection)
        for spec in specs:
            if have.get(spec.name) != spec:
                kind = f"{spec.dim}-d {spec.distance}" + (" multivector" if spec.multivector else "")
                raise StoreError(
                    f"collection {collection!r} was made with encoder(s) {', '.join(sorted(have))}, not {spec.name} "
                    f"({kind}); use another --collection for this encoder"
                )
        for name, version in (versions or {}).items():
            self.check_encoder_version(collection, name, (encoders or {}).get(name, name), version)

    def encoder_specs(self, collection: str) -> dict[str, str]:
        """Vector name → encoder spec string, as recorded when the collection was made."""
        return self._recorded(collection, "encoders")

    def encoder_versions(self, collection: str) -> dict[str, str]:
        """Vector name → encoder version, as recorded when the collection was made ({} for older collections)."""
        return self._recorded(collection, "versions")

    def _recorded(self, collection: str, key: str) -> dict[str, str]:
        metadata = self.client.get_collection(collection).config.metadata or {}
        return dict((metadata.get("lookalike") or {}).get(key) or {})

    def check_encoder_version(self, collection: str, vector: str, encoder: str, version: str) -> None:
        """Refuse to mix an encoder's vectors with a collection's `vector` made by another version of it.

        A collection that recorded no version (made before versions were) or an encoder without one is accepted,
        with a `LegacyCollectionWarning` for the former (Python shows each distinct warning once).

        Raises:
            EncoderVersionError: both versions are known and differ.
        """
        stored = self.encoder_versions(collection).get(vector, UNKNOWN_VERSION)
        if stored == version or version == UNKNOWN_VERSION:
            return
        if stored == UNKNOWN_VERSION:
            warnings.warn(
                f"collection {collection!r} records no encoder version (made before lookalike recorded them): its "
                f"{encoder} vectors are assumed to match version {version}; re-ingest into a new collection if the "
                "encoder changed since",
                LegacyCollectionWarning,
                stacklevel=2,
            )
            return
        raise EncoderVersionError(
            f"collection {collection!r} holds {encoder} vectors from encoder version {stored}, but this {encoder} is "
            f"version {version} (its behaviour or weights changed, so the vectors would not compare); re-ingest "
            "into a new collection (--collection NEW)"
        )

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Write whole points, replacing any stored point with the same id (vectors and payload alike)."""
        if points:
            self.client.upsert(collection, points=[point_struct(p) for p in points], wait=True)

    def merge_points(self, collection: str, points: Sequence[Point]) -> None:
        """Write points without clobbering what other encoders stored in them, and wait until stored.

        New ids are upserted whole. For ids already stored, only the given named vectors are written
        (`update_vectors`) and the given payload fields set (`set_payload`), so a second encoder's pass keeps
        the first one's vectors; `missing_vectors` becomes the stored list plus `missing`, minus the vectors
        written now. Assumes one writer per collection at a time (the embedded store enforces it).
        """
        if not points:
            return
        stored = self._missing_records(collection, [p.point_id for p in points])
        new = [point_struct(p) for p in points if p.point_id not in stored]
        operations: list[Any] = [models.UpsertOperation(upsert=models.PointsList(points=new))] if new else []
        updates = [
            models.PointVectors(id=p.point_id, vector=vector_lists(p.vectors))
            for p in points
            if p.point_id in stored and p.vectors
        ]
        if updates:
            operations.append(models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=updates)))
        for p in points:
            if p.point_id in stored:
                kept = [n for n in stored[p.point_id] if n not in p.vectors and n not in p.missing]
                payload = {**p.payload, "missing_vectors": kept + list(p.missing)}
                operations.append(
                    models.SetPayloadOperation(set_payload=models.SetPayload(payload=payload, points=[p.point_id]))
                )
        self.client.batch_update_points(collection, operations, wait=True)

    def _missing_records(self, collection: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """For each id already stored, the vector names recorded as missing (empty list when none)."""
        stored = self.payloads(collection, ids, ["missing_vectors"])
        return {pid: list(payload.get("missing_vectors") or []) for pid, payload in stored.items()}

    def payloads(
        self, collection: str, ids: Sequence[str], keys: Sequence[str], batch: int = 1000
    ) -> dict[str, dict[str, Any]]:
        """The payload fields `keys` of each id that is stored (ids not stored are left out), `batch` ids a request."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), batch):
            chunk = list(ids[start : start + batch])
            records = self.client.retrieve(collection, ids=chunk, with_payload=list(keys), with_vectors=False)
            found.update((str(r.id), dict(r.payload or {})) for r in records)
        return found

    def set_payloads(self, collection: str, updates: Mapping[str, Mapping[str, Any]], batch: int = 500) -> None:
        """Merge payload fields into existing points (e.g. labels a later manifest supplies)."""
        items = list(updates.items())
        for start in range(0, len(items), batch):
            operations = [
                models.SetPayloadOperation(set_payload=models.SetPayload(payload=dict(fields), points=[pid]))
                for pid, fields in items[start : start + batch]
            ]
            self.client.batch_update_points(collection, operations, wait=True)

    def present_ids(
        self, collection: str, ids: Sequence[str], vector: str, batch: int = 1000, retry_missing: bool = False
    ) -> set[str]:
        """Ids already done for `vector`: stored with that vector, or recorded as having none (no face) unless
        `retry_missing` (e.g. a second run with a no-face fallback should embed those again)."""
        found: set[str] = set()
        for start in range(0, len(ids), batch):
            records = self.client.retrieve(
                collection,
                ids=list(ids[start : start + batch]),
                with_payload=["missing_vectors"],
                with_vectors=[vector],
            )
            for r in records:
                missing = (r.payload or {}).get("missing_vectors") or []
                if (isinstance(r.vector, dict) and vector in r.vector) or (vector in missing and not retry_missing):
                    found.add(str(r.id))
        return found

    def get_points(self, collection: str, ids: Sequence[str], vector: str) -> dict[str, tuple[np.ndarray | None, dict]]:
        """Stored vector (or None) and payload for each id that exists."""
        records = self.client.retrieve(collection, ids=list(ids), with_payload=True, with_vectors=[vector])
        out: dict[str, tuple[np.ndarray | None, dict]] = {}
        for r in records:
            vec = r.vector.get(vector) if isinstance(r.vector, dict) else None
            out[str(r.id)] = (None if vec is None else np.asarray(vec, dtype=np.float32), dict(r.payload or {}))
        return out

    def find_ids(self, collection: str, key: str, value: str, limit: int = 10) -> list[str]:
        """Ids of points whose payload `key` equals `value`."""
        flt = models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))])
        records, _ = self.client.scroll(collection, scroll_filter=flt, limit=limit, with_payload=False)
        return [str(r.id) for r in records]

    def scroll(
        self, collection: str, vector: str | None = None, batch: int = 1000, flt: models.Filter | None = None
    ) -> Iterator[tuple[str, np.ndarray | None, dict]]:
        """Every point as (id, vector or None, payload), in pages of `batch`."""
        offset = None
        while True:
            records, offset = self.client.scroll(
                collection,
                scroll_filter=flt,
                limit=batch,
                offset=offset,
                with_payload=True,
                with_vectors=[vector] if vector else False,
            )
            for r in records:
                vec = r.vector.get(vector) if vector and isinstance(r.vector, dict) else None
                yield str(r.id), (None if vec is None else np.asarray(vec, dtype=np.float32)), dict(r.payload or {})
            if offset is None:
                return

    def count(self, collection: str) -> int:
        return int(self.client.count(collection, exact=True).count)

    def query(
        self,
        collection: str,
        spec: VectorSpec,
        vectors: np.ndarray,
        k: int,
        filters: Sequence[models.Filter | None] | models.Filter | None = None,
    ) -> list[list[Hit]]:
        """Top-k hits for each row of (Q, D) `vectors` — (Q, K, D) for a multivector — in one batch request; one
        filter for all, or one per row."""
        rows = np.asarray(vectors)
        rows = rows[None] if rows.ndim == (2 if spec.multivector else 1) else rows
        per_row = list(filters) if isinstance(filters, Sequence) else [filters] * len(rows)
        requests = [
            models.QueryRequest(
                query=row.astype(np.float32).tolist(), using=spec.name, filter=flt, limit=k, with_payload=True
            )
            for row, flt in zip(rows, per_row, strict=True)
        ]
        responses = [
            response
            for start in range(0, len(requests), 256)
            for response in self.client.query_batch_points(collection, requests=requests[start : start + 256])
        ]
        return [
            [
                Hit(
                    rank=i + 1,
                    score=to_score(spec.distance, p.score, spec.dim),
                    point_id=str(p.id),
                    payload=dict(p.payload or {}),
                )
                for i, p in enumerate(resp.points)
            ]
            for resp in responses
        ]
