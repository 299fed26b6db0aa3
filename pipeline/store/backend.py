"""What a store backend must do, in lookalike's terms (string ids, numpy vectors, `StoreFilter`): the primitives
`VectorStore` builds the contract on. Two backends implement it: `edge` (embedded) and `server` (qdrant-client)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.core.config import ClusterLayout
from pipeline.core.errors import StoreError
from pipeline.store.catalog import Catalog
from pipeline.store.points import MergePlan, Point, RawHit, StoredRecord, StoreFilter, VectorSpec

Offset = Any  # an opaque scroll position, as the backend returned it


@dataclass(frozen=True)
class CollectionInfo:
    """What `lookalike collections` shows of one collection; `layout` is the shards and replicas a server reports
    (None for the embedded store: one shard on this machine)."""

    name: str
    backend: str
    points: int
    indexed_vectors: int
    segments: int
    specs: Mapping[str, VectorSpec]
    catalog: Catalog
    layout: ClusterLayout | None = None


@dataclass(frozen=True)
class QueryBatch:
    """One batch of nearest-neighbour queries against one named vector.

    Attributes:
        spec: the named vector searched.
        rows: one query each: a (D,) vector, or a (K, D) set for a multivector.
        filters: one filter (or None) per row.
        k: hits per query.
        exact: score every candidate (no HNSW), e.g. for reference measurements.
        ef: the HNSW search beam for this batch; None = the store's (`StoreConfig.hnsw_ef`). Never below k.
        with_payload: return each hit's payload (a k-NN graph needs only ids and scores).
    """

    spec: VectorSpec
    rows: Sequence[np.ndarray]
    filters: Sequence[StoreFilter | None]
    k: int
    exact: bool = False
    ef: int | None = None
    with_payload: bool = True


@contextmanager
def one_line_errors(what: str) -> Iterator[None]:
    """An engine's or client's error as a one-line `StoreError` saying what failed (qdrant-edge 0.9.0 raises bare
    `Exception`s, and panics on some damaged files; qdrant-client many types: transport, HTTP, gRPC, local mode's
    ValueError). Ours and lookalike's own bugs (TypeError, AttributeError, KeyError) pass through unchanged."""
    try:
        yield
    except (StoreError, TypeError, AttributeError, KeyError):
        raise
    except Exception as e:
        lines = str(e).strip().splitlines()
        raise StoreError(f"{what}: {lines[0] if lines else type(e).__name__}") from e
    except BaseException as e:  # a Rust panic (pyo3's PanicException is not an Exception): damaged files
        if type(e).__name__ != "PanicException":
            raise
        lines = str(e).strip().splitlines()
        raise StoreError(
            f"{what}: the store engine stopped on damaged files ({lines[0] if lines else 'panic'}); restore the "
            "store folder from a backup, or ingest again into a new store folder",
            setting="store",
        ) from None


def stored_record(record: Any, vectors: Sequence[str]) -> StoredRecord:
    """An engine's record (either backend) in lookalike's terms: a string id (qdrant-edge gives `uuid.UUID`), the
    named vectors asked for as float32 arrays, the payload as a dict."""
    stored = record.vector if isinstance(record.vector, dict) else {}
    return StoredRecord(
        str(record.id),
        {k: np.asarray(v, dtype=np.float32) for k, v in stored.items() if k in vectors},
        dict(record.payload or {}),
    )


class StoreBackend(Protocol):
    """The primitives of one storage engine; every method may raise `StoreError` with a one-line message."""

    kind: str  # "edge" or "server", for `lookalike collections`
    where: str  # the folder or URL, for messages

    def list_collections(self) -> list[str]: ...

    def has_collection(self, name: str) -> bool: ...

    def create_collection(self, name: str, specs: Sequence[VectorSpec], catalog: Catalog) -> None: ...

    def vector_specs(self, name: str) -> dict[str, VectorSpec]: ...

    def catalog(self, name: str) -> Catalog: ...

    def upsert(self, name: str, points: Sequence[Point]) -> None: ...

    def apply_merge(self, name: str, plan: MergePlan) -> None: ...

    def set_payloads(self, name: str, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...

    def retrieve(
        self, name: str, ids: Sequence[str], payload: bool | Sequence[str], vectors: Sequence[str]
    ) -> list[StoredRecord]: ...

    def scroll_page(
        self,
        name: str,
        flt: StoreFilter | None,
        limit: int,
        offset: Offset,
        vectors: Sequence[str],
    ) -> tuple[list[StoredRecord], Offset]: ...

    def count(self, name: str, flt: StoreFilter | None = None) -> int: ...

    def query_batch(self, name: str, batch: QueryBatch) -> list[list[RawHit]]: ...

    def info(self, name: str) -> CollectionInfo: ...

    def build_index(self, name: str) -> bool: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
