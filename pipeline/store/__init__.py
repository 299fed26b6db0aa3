"""The store: one contract (`VectorStore`) over two backends, the embedded Qdrant engine (`edge`, the default) and a
Qdrant server (`server`, qdrant-client); Qdrant's scoring rules once (`scoring`); the encoder catalog (`catalog`).
Imports only `pipeline.core.config`, `pipeline.core.errors` and `pipeline.core.records`."""

from pipeline.store.backend import CollectionInfo, StoreBackend
from pipeline.store.catalog import Catalog, LegacyCollectionWarning
from pipeline.store.points import (
    Point,
    StoreFilter,
    VectorSpec,
    check_collection_name,
    only_ids,
    point_id_for,
    where_filter,
)
from pipeline.store.scoring import to_score
from pipeline.store.vector_store import VectorStore

__all__ = [
    "Catalog",
    "CollectionInfo",
    "LegacyCollectionWarning",
    "Point",
    "StoreBackend",
    "StoreFilter",
    "VectorSpec",
    "VectorStore",
    "check_collection_name",
    "only_ids",
    "point_id_for",
    "to_score",
    "where_filter",
]
