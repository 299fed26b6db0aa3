"""`lookalike store migrate`: move the collections an earlier lookalike kept in qdrant-client's local mode into
edge shards in the same folder, verify every point, and only then remove the old files.

Explicit, not on first open: copying a large old store takes minutes (local mode reads every point through
SQLite), which no `query` should start unasked, and removing the old files is a deletion the user should choose.
The copy is idempotent (point ids are kept), so a migration interrupted at any point is finished by running it again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient
from tqdm import tqdm

from pipeline.core.errors import StoreError
from pipeline.store.backend import one_line_errors
from pipeline.store.catalog import check_specs
from pipeline.store.edge import EdgeBackend
from pipeline.store.opening import LEGACY_META, legacy_collections
from pipeline.store.points import Point, StoredRecord, VectorSpec
from pipeline.store.server import ServerBackend

PAGE = 256


@dataclass(frozen=True)
class MigratedCollection:
    """One collection moved: its name and the points copied and verified."""

    name: str
    points: int


@dataclass(frozen=True)
class MigrationReport:
    """What `migrate_legacy` did."""

    folder: str
    collections: tuple[MigratedCollection, ...]
    removed_old: bool


def migrate_legacy(folder: Path, keep_old: bool = False, progress: bool = True) -> MigrationReport:
    """Copy every old-format collection of `folder` into the embedded engine, verify, then remove the old files.

    Args:
        folder: the store folder (`--store`).
        keep_old: keep the old files after a verified copy.
        progress: show a progress bar per collection.

    Raises:
        StoreError: nothing to migrate, the folder is in use, a collection of the same name with other vectors
            exists already, or a copied point does not match its original (the old files are then kept).
    """
    names = legacy_collections(folder)
    if not names:
        raise StoreError(f"{folder} holds no collections in the old format: nothing to migrate")
    edge = EdgeBackend(folder)  # our lock first: no other lookalike may use the folder meanwhile
    try:
        with one_line_errors(f"cannot open the old store {folder} (is an earlier lookalike still using it?)"):
            client = QdrantClient(path=str(folder))
        old = ServerBackend(client, f"old store {folder}", remote=False)
        try:
            moved = tuple(_migrate_one(old, edge, name, progress) for name in names)
        finally:
            old.close()
        edge.flush()
        if not keep_old:
            _remove_old(folder)
    finally:
        edge.close()
    return MigrationReport(str(folder), moved, not keep_old)


def _migrate_one(old: ServerBackend, edge: EdgeBackend, name: str, progress: bool) -> MigratedCollection:
    specs = old.vector_specs(name)
    if edge.has_collection(name):  # an earlier, interrupted migration: finish it (the copy is idempotent)
        check_specs(name, edge.vector_specs(name), list(specs.values()))
    else:
        edge.create_collection(name, list(specs.values()), old.catalog(name))
    total = old.count(name)
    vectors = list(specs)
    with tqdm(total=total, desc=f"migrating {name}", unit="pt", disable=not progress) as bar:
        for page in _pages(old, name, vectors):
            edge.upsert(name, [Point(r.point_id, r.vectors, r.payload) for r in page])
            bar.update(len(page))
    checked = _verify(old, edge, name, specs)
    if checked != total or edge.count(name) != total:
        raise StoreError(
            f"migration of {name!r}: {edge.count(name)} points in the new store, {total} in the old one; the old "
            "files are kept, run the migration again"
        )
    return MigratedCollection(name, total)


def _pages(backend: ServerBackend | EdgeBackend, name: str, vectors: list[str]) -> Iterator[list[StoredRecord]]:
    offset = None
    while True:
        records, offset = backend.scroll_page(name, None, PAGE, offset, vectors)
        if records:
            yield records
        if offset is None:
            return


def _verify(old: ServerBackend, edge: EdgeBackend, name: str, specs: Mapping[str, VectorSpec]) -> int:
    """Read every old point back from the new store and compare vectors and payload; returns the points checked.

    Raises:
        StoreError: a point is missing or differs.
    """
    checked = 0
    vectors = list(specs)
    for page in _pages(old, name, vectors):
        copied = {r.point_id: r for r in edge.retrieve(name, [r.point_id for r in page], True, vectors)}
        for r in page:
            twin = copied.get(r.point_id)
            if twin is None or dict(twin.payload) != dict(r.payload) or not _same_vectors(r, twin, specs):
                raise StoreError(
                    f"migration of {name!r}: point {r.point_id} differs after the copy; the old files are kept, "
                    "run the migration again"
                )
        checked += len(page)
    return checked


def _same_vectors(a: StoredRecord, b: StoredRecord, specs: Mapping[str, VectorSpec]) -> bool:
    """Equal vectors; cosine ones compared by direction (local mode may return them as written, the engine returns
    them unit-length, and only the direction is scored)."""
    if set(a.vectors) != set(b.vectors):
        return False
    return all(
        np.allclose(_as_scored(a.vectors[k], specs[k]), _as_scored(b.vectors[k], specs[k]), atol=1e-5)
        for k in a.vectors
    )


def _as_scored(vector: np.ndarray, spec: VectorSpec) -> np.ndarray:
    if spec.distance != "cosine":
        return vector
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _remove_old(folder: Path) -> None:
    """Remove qdrant-client's files (its catalogue, collections and lock), nothing else of the folder; the catalogue
    first, so a crash midway leaves a folder that opens as migrated (with some dead old files), never a half-old one."""
    (folder / LEGACY_META).unlink(missing_ok=True)
    old_collections = folder / "collection"
    if old_collections.is_dir():
        shutil.rmtree(old_collections)
    (folder / ".lock").unlink(missing_ok=True)
