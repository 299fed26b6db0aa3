"""The server backend: qdrant-client against a Qdrant server or cluster (`--qdrant-url`). Tests and the migration
of old stores use qdrant-client's local mode through the same class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from pipeline.core.config import DEFAULT_HNSW_EF, ClusterLayout
from pipeline.core.errors import StoreError
from pipeline.store.backend import CollectionInfo, Offset, QueryBatch, one_line_errors, stored_record
from pipeline.store.catalog import Catalog
from pipeline.store.points import (
    INDEXED_FIELDS,
    MergePlan,
    Point,
    RawHit,
    StoredRecord,
    StoreFilter,
    VectorSpec,
    check_collection_name,
    float_lists,
    group_payloads,
)

QDRANT_DISTANCES: dict[str, models.Distance] = {
    "cosine": models.Distance.COSINE,
    "euclid": models.Distance.EUCLID,
    "dot": models.Distance.DOT,
    "manhattan": models.Distance.MANHATTAN,
}
_INVERSE = {v: k for k, v in QDRANT_DISTANCES.items()}


def vector_params(spec: VectorSpec) -> models.VectorParams:
    """The server's config for one named vector (MAX_SIM over the set for a multivector)."""
    multi = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM) if spec.multivector else None
    return models.VectorParams(size=spec.dim, distance=QDRANT_DISTANCES[spec.distance], multivector_config=multi)


def layout_params(layout: ClusterLayout) -> dict[str, Any]:
    """The create-collection fields a layout sets: none for the server's defaults, so a single node gets the request
    it always got."""
    given = {
        "shard_number": layout.shards,
        "replication_factor": layout.replicas,
        "write_consistency_factor": layout.write_consistency,
    }
    return {k: v for k, v in given.items() if v is not None}


def reported_layout(params: Any) -> ClusterLayout:
    """The layout a server reports for a collection (`get_collection(...).config.params`); None where it reports
    none (qdrant-client's local mode)."""
    return ClusterLayout(params.shard_number, params.replication_factor, params.write_consistency_factor)


def client_filter(flt: StoreFilter | None) -> models.Filter | None:
    """lookalike's filter as qdrant-client's."""
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = [models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in flt.match.items()]
    if flt.ids is not None:
        must.append(models.HasIdCondition(has_id=sorted(flt.ids)))
    must_not: list[Any] = [models.HasIdCondition(has_id=sorted(flt.exclude_ids))] if flt.exclude_ids else []
    return models.Filter(must=must or None, must_not=must_not or None)


def _struct(point: Point) -> models.PointStruct:
    vectors: dict[str, Any] = {k: float_lists(v) for k, v in point.vectors.items()}
    return models.PointStruct(id=point.point_id, vector=vectors, payload=point.stored_payload())


class ServerBackend:
    """Collections on a Qdrant server or cluster through qdrant-client; the catalog lives in each collection's
    metadata, the shards and replicas in its config (the server records and reports them)."""

    kind = "server"

    def __init__(
        self,
        client: QdrantClient,
        where: str = "Qdrant server",
        remote: bool = True,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        layout: ClusterLayout | None = None,
    ) -> None:
        """Use a connected client (`remote` False for qdrant-client's local mode, which has no payload indexes and
        ignores a `layout`: the one collections created from here get)."""
        self.client = client
        self.where = where
        self.remote = remote
        self.hnsw_ef = hnsw_ef
        self.layout = layout or ClusterLayout()

    @classmethod
    def connect(
        cls,
        url: str,
        api_key: str | None,
        timeout_s: int,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        layout: ClusterLayout | None = None,
    ) -> ServerBackend:
        """Connect and check the server answers.

        Raises:
            StoreError: the server is unreachable or refuses the key.
        """
        client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        with one_line_errors(f"cannot reach Qdrant server at {url} (is it running? docker compose up -d)"):
            client.get_collections()
        return cls(client, f"Qdrant server {url}", hnsw_ef=hnsw_ef, layout=layout)

    def list_collections(self) -> list[str]:
        with one_line_errors(f"cannot list collections of {self.where}"):
            return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        with one_line_errors(f"cannot read {self.where}"):
            return bool(self.client.collection_exists(check_collection_name(name)))

    def create_collection(self, name: str, specs: Sequence[VectorSpec], catalog: Catalog) -> None:
        """Create with this backend's layout (shards, replicas, write consistency; nothing sent for the defaults).

        Raises:
            StoreError: the server refused (its own reason, in one line).
        """
        config = {s.name: vector_params(s) for s in specs}
        with one_line_errors(f"cannot create collection {name!r} on {self.where}"):
            self.client.create_collection(
                name, vectors_config=config, metadata=catalog.to_metadata(), **layout_params(self.layout)
            )
            if self.remote:
                for key in INDEXED_FIELDS:
                    self.client.create_payload_index(name, key, models.PayloadSchemaType.KEYWORD)

    def _config(self, name: str) -> Any:
        if not self.has_collection(name):
            raise StoreError(f"no collection {name!r} on {self.where}")
        with one_line_errors(f"cannot read collection {name!r}"):
            return self.client.get_collection(name)

    def vector_specs(self, name: str) -> dict[str, VectorSpec]:
        vectors = self._config(name).config.params.vectors
        if not isinstance(vectors, dict):
            raise StoreError(f"collection {name!r} has an unnamed vector: it was not made by lookalike")
        return {
            n: VectorSpec(n, p.size, _INVERSE[p.distance], p.multivector_config is not None)  # type: ignore[arg-type]
            for n, p in vectors.items()
        }

    def catalog(self, name: str) -> Catalog:
        return Catalog.from_metadata(self._config(name).config.metadata)

    def _batch(self, name: str, operations: list[Any]) -> None:
        if operations:
            with one_line_errors(f"write to collection {name!r} failed"):
                self.client.batch_update_points(name, operations, wait=True)

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        if points:
            with one_line_errors(f"write to collection {name!r} failed"):
                self.client.upsert(name, points=[_struct(p) for p in points], wait=True)

    def apply_merge(self, name: str, plan: MergePlan) -> None:
        """One batch request: new points, then payloads, then vectors (the server applies them in order)."""
        operations: list[Any] = []
        if plan.new_points:
            points = models.PointsList(points=[_struct(p) for p in plan.new_points])
            operations.append(models.UpsertOperation(upsert=points))
        operations += _payload_operations(plan.payloads)
        if plan.vectors:
            updates = [
                models.PointVectors(id=pid, vector={k: float_lists(v) for k, v in vs.items()})
                for pid, vs in plan.vectors
            ]
            operations.append(models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=updates)))
        self._batch(name, operations)

    def set_payloads(self, name: str, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self._batch(name, _payload_operations(updates))

    def retrieve(
        self, name: str, ids: Sequence[str], payload: bool | Sequence[str], vectors: Sequence[str]
    ) -> list[StoredRecord]:
        with_payload = payload if isinstance(payload, bool) else list(payload)
        with one_line_errors(f"read from collection {name!r} failed"):
            records = self.client.retrieve(
                name, ids=list(ids), with_payload=with_payload, with_vectors=list(vectors) or False
            )
        return [stored_record(r, vectors) for r in records]

    def scroll_page(
        self, name: str, flt: StoreFilter | None, limit: int, offset: Offset, vectors: Sequence[str]
    ) -> tuple[list[StoredRecord], Offset]:
        with one_line_errors(f"read from collection {name!r} failed"):
            records, next_offset = self.client.scroll(
                name,
                scroll_filter=client_filter(flt),
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=list(vectors) or False,
            )
        return [stored_record(r, vectors) for r in records], next_offset

    def count(self, name: str, flt: StoreFilter | None = None) -> int:
        with one_line_errors(f"count of collection {name!r} failed"):
            return int(self.client.count(name, count_filter=client_filter(flt), exact=True).count)

    def query_batch(self, name: str, batch: QueryBatch) -> list[list[RawHit]]:
        # local mode is always exact and warns about search parameters
        ef = max(batch.ef or self.hnsw_ef, batch.k)
        params = models.SearchParams(hnsw_ef=ef, exact=batch.exact) if self.remote else None
        requests = [
            models.QueryRequest(
                query=float_lists(row),
                using=batch.spec.name,
                filter=client_filter(flt),
                limit=batch.k,
                with_payload=batch.with_payload,
                params=params,
            )
            for row, flt in zip(batch.rows, batch.filters, strict=True)
        ]
        out: list[list[RawHit]] = []
        with one_line_errors(f"query of collection {name!r} failed"):
            for start in range(0, len(requests), 256):
                for response in self.client.query_batch_points(name, requests=requests[start : start + 256]):
                    out.append([RawHit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points])
        return out

    def info(self, name: str) -> CollectionInfo:
        config = self._config(name)
        return CollectionInfo(
            name,
            self.kind,
            int(config.points_count or 0),
            int(config.indexed_vectors_count or 0),
            int(config.segments_count or 0),
            self.vector_specs(name),
            Catalog.from_metadata(config.config.metadata),
            reported_layout(config.config.params),
        )

    def build_index(self, name: str) -> bool:
        """A server indexes on its own (its optimizers run in the background)."""
        return False

    def flush(self) -> None:
        """A server acknowledges writes once stored (`wait=True`): nothing to flush."""

    def close(self) -> None:
        self.client.close()


def _payload_operations(updates: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
    return [
        models.SetPayloadOperation(set_payload=models.SetPayload(payload=payload, points=list(ids)))
        for ids, payload in group_payloads(updates)
    ]
