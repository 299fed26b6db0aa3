"""The embedded backend: the real Qdrant engine in-process (qdrant-edge), one shard folder per collection.

Layout of a store folder:
    lookalike.lock                   our exclusive lock, taken before any shard is opened (`pipeline.store.lock`)
    collections/<name>/shard/        the engine's shard (segments, WAL)
    collections/<name>/catalog.json  named vectors, encoder specs and versions; written last and atomically, so a
                                     collection exists once its catalog does (a crash mid-create leaves none)

Every update is in the engine's write-ahead log when `update` returns, so a kill -9 loses nothing acknowledged;
shards are flushed every `FLUSH_EVERY` writes and on close, which keeps the log (and reopening) short.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from pipeline.core.config import DEFAULT_HNSW_EF, DEFAULT_MIN_FREE_MB
from pipeline.core.errors import StoreError
from pipeline.store.backend import CollectionInfo, Offset, QueryBatch, one_line_errors, stored_record
from pipeline.store.catalog import Catalog, read_json, write_json_atomic
from pipeline.store.lock import StoreLock
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

FLUSH_EVERY = 64  # update calls between flushes of a shard
INDEX_MIN_POINTS = 10_000  # below this an exact top-10 takes under 1 ms (benchmarks/store_bench.py): no graph needed
HNSW_M = 16  # graph degree
HNSW_EF_CONSTRUCT = 100  # build-time beam
WAL_PATIENCE_S = 10.0
CATALOG_FORMAT = 1
_DISTANCES = {
    "cosine": qe.Distance.Cosine,
    "euclid": qe.Distance.Euclid,
    "dot": qe.Distance.Dot,
    "manhattan": qe.Distance.Manhattan,
}


def _edge_config(specs: Sequence[VectorSpec]) -> qe.EdgeConfig:
    """Named vectors, HNSW (m = 16) for single vectors; none for multivectors, which stay brute force (their graph
    build did not finish in 240 s at 5,000 points, in issue 15's trials)."""
    no_graph = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
    vectors = {
        s.name: qe.EdgeVectorParams(
            size=s.dim,
            distance=_DISTANCES[s.distance],
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim) if s.multivector else None,
            hnsw_config=no_graph if s.multivector else None,
        )
        for s in specs
    }
    return qe.EdgeConfig(
        vectors=vectors,
        hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000),
        # we decide when to index (`build_index`, past `index_min_points`); then every segment gets its graph
        # (0 would switch indexing off)
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1),
    )


def edge_filter(flt: StoreFilter | None) -> qe.Filter | None:
    """lookalike's filter as the engine's (the engine wants id sets, not lists)."""
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = [qe.FieldCondition(key=k, match=qe.MatchValue(v)) for k, v in flt.match.items()]
    if flt.ids is not None:
        must.append(qe.HasIdCondition(set(flt.ids)))
    must_not: list[Any] = [qe.HasIdCondition(set(flt.exclude_ids))] if flt.exclude_ids else []
    return qe.Filter(must=must or None, must_not=must_not or None)


def _catalog_json(specs: Sequence[VectorSpec], catalog: Catalog) -> dict[str, Any]:
    return {
        "format": CATALOG_FORMAT,
        "vectors": {s.name: {"dim": s.dim, "distance": s.distance, "multivector": s.multivector} for s in specs},
        **catalog.to_metadata()["lookalike"],
    }


class EdgeBackend:
    """Collections as qdrant-edge shards under one folder, held under our exclusive lock while open."""

    kind = "edge"

    def __init__(
        self,
        folder: Path,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        index_min_points: int = INDEX_MIN_POINTS,
        min_free_bytes: int = DEFAULT_MIN_FREE_MB * 2**20,
    ) -> None:
        """Lock the folder (created if missing); shards are opened on first use. Writes are refused while the disk
        has less than `min_free_bytes` free (`check_free_space`).

        Raises:
            StoreError: another process holds the folder, or it cannot be created.
        """
        self.folder = folder
        self.where = f"embedded store {folder}"
        self.hnsw_ef = hnsw_ef
        self.index_min_points = index_min_points
        self.min_free_bytes = min_free_bytes
        self._lock = StoreLock(folder)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._writes: dict[str, int] = {}
        self._catalogs: dict[str, dict[str, Any]] = {}

    # -- collections -----------------------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.folder / "collections" / check_collection_name(name)

    def list_collections(self) -> list[str]:
        root = self.folder / "collections"
        if not root.is_dir():
            return []
        return sorted(d.name for d in root.iterdir() if (d / "catalog.json").is_file())

    def has_collection(self, name: str) -> bool:
        return (self._dir(name) / "catalog.json").is_file()

    def create_collection(self, name: str, specs: Sequence[VectorSpec], catalog: Catalog) -> None:
        folder = self._dir(name)
        if folder.exists():
            shutil.rmtree(folder)  # a create that crashed before its catalog was written: nothing was stored
        check_free_space(self.folder, self.min_free_bytes, f"create collection {name!r}")
        folder.mkdir(parents=True)
        with one_line_errors(f"cannot create collection {name!r} in {self.where}"):
            shard = qe.EdgeShard.create(str(folder / "shard"), _edge_config(specs))
            for key in INDEXED_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
            shard.flush()
        self._shards[name] = shard
        write_json_atomic(folder / "catalog.json", _catalog_json(specs, catalog))

    def _catalog_file(self, name: str) -> dict[str, Any]:
        if name not in self._catalogs:
            path = self._dir(name) / "catalog.json"
            if not path.is_file():
                raise StoreError(f"no collection {name!r} in {self.where}")
            self._catalogs[name] = read_json(path, f"catalog of collection {name!r}")
        return self._catalogs[name]

    def vector_specs(self, name: str) -> dict[str, VectorSpec]:
        vectors = self._catalog_file(name).get("vectors") or {}
        try:
            return {n: VectorSpec(n, int(v["dim"]), v["distance"], bool(v["multivector"])) for n, v in vectors.items()}
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"catalog of collection {name!r} in {self.where} is damaged: {e}") from e

    def catalog(self, name: str) -> Catalog:
        return Catalog.from_metadata({"lookalike": self._catalog_file(name)})

    def _shard(self, name: str) -> qe.EdgeShard:
        if name in self._shards:
            return self._shards[name]
        self._catalog_file(name)  # refuses a collection that does not exist
        shard_dir = self._dir(name) / "shard"
        temp = shard_dir / "temp_segments"
        if temp.is_dir():  # left by an optimize that was killed; we hold the lock, so nobody is using it
            for leftover in temp.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        check_free_space(self.folder, self.min_free_bytes, f"open collection {name!r}")  # loading writes its log
        with one_line_errors(f"cannot open collection {name!r} in {self.where}"), _engine_stderr_held():
            self._shards[name] = _load_shard(shard_dir)
        return self._shards[name]

    # -- writes ----------------------------------------------------------------------------------------------------

    def _update(self, name: str, operation: qe.UpdateOperation) -> None:
        check_free_space(self.folder, self.min_free_bytes, f"write to collection {name!r}")
        with one_line_errors(f"write to collection {name!r} failed"):
            self._shard(name).update(operation)

    def _wrote(self, name: str) -> None:
        self._writes[name] = self._writes.get(name, 0) + 1
        if self._writes[name] % FLUSH_EVERY == 0:
            with one_line_errors(f"flush of collection {name!r} failed"):
                self._shard(name).flush()

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        if points:
            self._update(name, qe.UpdateOperation.upsert_points([_edge_point(p) for p in points]))
            self._wrote(name)

    def apply_merge(self, name: str, plan: MergePlan) -> None:
        """New points, then payloads, then vectors: one engine update each (the engine has no batch update)."""
        if plan.new_points:
            self._update(name, qe.UpdateOperation.upsert_points([_edge_point(p) for p in plan.new_points]))
        for ids, payload in group_payloads(plan.payloads):
            self._update(name, qe.UpdateOperation.set_payload(list(ids), payload))
        if plan.vectors:
            updates = [qe.PointVectors(pid, {k: float_lists(v) for k, v in vs.items()}) for pid, vs in plan.vectors]
            self._update(name, qe.UpdateOperation.update_vectors(updates))
        self._wrote(name)

    def set_payloads(self, name: str, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for ids, payload in group_payloads(updates):
            self._update(name, qe.UpdateOperation.set_payload(list(ids), payload))
        if updates:
            self._wrote(name)

    # -- reads -----------------------------------------------------------------------------------------------------

    def retrieve(
        self, name: str, ids: Sequence[str], payload: bool | Sequence[str], vectors: Sequence[str]
    ) -> list[StoredRecord]:
        with_payload = payload if isinstance(payload, bool) else list(payload)
        with one_line_errors(f"read from collection {name!r} failed"):
            records = self._shard(name).retrieve(list(ids), with_payload, list(vectors) or False)
        return [stored_record(r, vectors) for r in records]

    def scroll_page(
        self, name: str, flt: StoreFilter | None, limit: int, offset: Offset, vectors: Sequence[str]
    ) -> tuple[list[StoredRecord], Offset]:
        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=edge_filter(flt), with_payload=True, with_vector=list(vectors) or False
        )
        with one_line_errors(f"read from collection {name!r} failed"):
            records, next_offset = self._shard(name).scroll(request)
        return [stored_record(r, vectors) for r in records], next_offset

    def count(self, name: str, flt: StoreFilter | None = None) -> int:
        with one_line_errors(f"count of collection {name!r} failed"):
            return int(self._shard(name).count(qe.CountRequest(exact=True, filter=edge_filter(flt))))

    def query_batch(self, name: str, batch: QueryBatch) -> list[list[RawHit]]:
        params = qe.SearchParams(hnsw_ef=max(batch.ef or self.hnsw_ef, batch.k), exact=batch.exact)
        requests = [
            qe.QueryRequest(
                limit=batch.k,
                query=qe.Query.Nearest(float_lists(row), using=batch.spec.name),
                filter=edge_filter(flt),
                with_payload=batch.with_payload,
                params=params,
            )
            for row, flt in zip(batch.rows, batch.filters, strict=True)
        ]
        out: list[list[RawHit]] = []
        with one_line_errors(f"query of collection {name!r} failed"):
            for start in range(0, len(requests), 256):
                chunk = qe.QueryBatchRequest(requests[start : start + 256])
                for points in self._shard(name).query_batch(chunk):
                    out.append([RawHit(str(p.id), float(p.score), dict(p.payload or {})) for p in points])
        return out

    def info(self, name: str) -> CollectionInfo:
        with one_line_errors(f"cannot read collection {name!r}"):
            info = self._shard(name).info()
        return CollectionInfo(
            name,
            self.kind,
            info.points_count,
            info.indexed_vectors_count,
            info.segments_count,
            self.vector_specs(name),
            self.catalog(name),
        )

    # -- upkeep ----------------------------------------------------------------------------------------------------

    def build_index(self, name: str) -> bool:
        """Build HNSW graphs (the engine's optimizers) once the collection is large enough to gain from them."""
        if not any(not s.multivector for s in self.vector_specs(name).values()):
            return False
        if self.count(name) < self.index_min_points:
            return False
        shard_bytes = sum(f.stat().st_size for f in (self._dir(name) / "shard").rglob("*") if f.is_file())
        check_free_space(self.folder, self.min_free_bytes + shard_bytes, f"index collection {name!r} (needs a copy)")
        with one_line_errors(f"indexing collection {name!r} failed"):
            shard = self._shard(name)
            changed = bool(shard.optimize())
            shard.flush()
        return changed

    def flush(self) -> None:
        for name, shard in self._shards.items():
            with one_line_errors(f"flush of collection {name!r} failed"):
                shard.flush()

    def close(self) -> None:
        """Flush and close every open shard, then release the lock (always, even if a flush fails)."""
        try:
            for name, shard in list(self._shards.items()):
                with one_line_errors(f"closing collection {name!r} failed"):
                    shard.flush()
                    shard.close()
                del self._shards[name]
        finally:
            self._lock.release()


@contextmanager
def _engine_stderr_held() -> Iterator[None]:
    """Hold what the engine writes to fd 2 while a shard loads, then drop it: on damaged files it panics, printing
    the panic and (with RUST_BACKTRACE set) a long backtrace before raising, and the error should stay one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def check_free_space(folder: Path, need_bytes: int, action: str) -> None:
    """Refuse a write while the disk holding `folder` has less than `need_bytes` free.

    The engine maps its files into memory: a write that finds the disk full kills the process with SIGBUS (measured:
    exit 135 on a full tmpfs) instead of raising an error. Refusing before that keeps every acknowledged point and
    lets the command end in one line.

    Raises:
        StoreError: not enough free space.
    """
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise StoreError(
            f"cannot {action}: {free / 2**20:.0f} MiB free on the disk of {folder}, below the {need_bytes / 2**20:.0f} "
            "MiB lookalike keeps free (a full disk would crash the store engine); free some space, or set "
            "LOOKALIKE_MIN_FREE_MB lower. Everything written so far is kept"
        )


def _load_shard(shard_dir: Path, patience_s: float = WAL_PATIENCE_S) -> qe.EdgeShard:
    """Load a shard, waiting up to `patience_s` while its write-ahead log is locked.

    We hold the store lock, so whoever holds the log is not a live lookalike but a dying one's child: the workers of
    a killed ingest keep its inherited file for the moment they take to exit (they are killed with their parent).
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return qe.EdgeShard.load(str(shard_dir))
        except Exception as e:
            if "WouldBlock" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _edge_point(point: Point) -> qe.Point:
    return qe.Point(point.point_id, {k: float_lists(v) for k, v in point.vectors.items()}, point.stored_payload())
