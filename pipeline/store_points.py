"""What goes into and comes out of the store: named-vector specs, points, scores and filters, as plain data and
the Qdrant models they become (`pipeline.store` holds the client adapter)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qdrant_client import models

from pipeline.records import Distance

QDRANT_DISTANCES: dict[Distance, models.Distance] = {
    "cosine": models.Distance.COSINE,
    "euclid": models.Distance.EUCLID,
    "dot": models.Distance.DOT,
    "manhattan": models.Distance.MANHATTAN,
}
_ID_NAMESPACE = uuid.UUID("5f0c7a52-3b7e-4c1e-9f5e-6c6f6f6b616c")


def point_id_for(sha256: str) -> str:
    """Deterministic point id: uuid5 of the content hash, so re-runs are idempotent."""
    return str(uuid.uuid5(_ID_NAMESPACE, sha256))


@dataclass(frozen=True)
class VectorSpec:
    """One named vector of a collection, as an encoder declares it; a multivector holds a set of `dim`-vectors per
    point, compared by MAX_SIM (the sum over query vectors of the best `distance` score among the point's)."""

    name: str
    dim: int
    distance: Distance
    multivector: bool = False


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


def to_score(distance: Distance, raw: float, dim: int) -> float:
    """Qdrant's raw value as a similarity (higher is better).

    Cosine and dot are similarities already; Euclid is negated; Manhattan becomes 1 - d/dim, which for 0/1
    bit vectors (phash) is the fraction of equal bits.
    """
    if distance == "euclid":
        return -raw
    if distance == "manhattan":
        return 1.0 - raw / dim
    return raw


def vector_params(spec: VectorSpec) -> models.VectorParams:
    """Qdrant's config for one named vector (MAX_SIM over the set for a multivector)."""
    multi = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM) if spec.multivector else None
    return models.VectorParams(size=spec.dim, distance=QDRANT_DISTANCES[spec.distance], multivector_config=multi)


def vector_lists(vectors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Named vectors (or vector sets) as the nested float lists Qdrant's client sends."""
    return {k: np.asarray(v, dtype=np.float32).tolist() for k, v in vectors.items()}


def point_struct(point: Point) -> models.PointStruct:
    """A whole point to upsert; `missing` goes into the payload key `missing_vectors`."""
    payload = {**point.payload, "missing_vectors": list(point.missing)} if point.missing else dict(point.payload)
    return models.PointStruct(id=point.point_id, vector=vector_lists(point.vectors), payload=payload)


def where_filter(conditions: Mapping[str, str | int] | None, exclude_ids: Sequence[str] = ()) -> models.Filter | None:
    """A payload filter from `key=value` conditions (all must match), optionally excluding point ids."""
    must: list[Any] = [
        models.FieldCondition(key=key, match=models.MatchValue(value=value))
        for key, value in (conditions or {}).items()
    ]
    must_not: list[Any] = [models.HasIdCondition(has_id=list(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


def only_ids(ids: Sequence[str]) -> models.Filter:
    """A filter that restricts a query to these point ids (e.g. a task's own candidates)."""
    return models.Filter(must=[models.HasIdCondition(has_id=list(ids))])
