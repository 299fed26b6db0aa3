"""A small synthetic collection for the map tests: seeded vectors in labelled clusters, each point with a real image
(a helper module of its own: `conftest` is a name several test folders use)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fakes import noise_image

from pipeline.store import Point, VectorSpec, VectorStore, point_id_for

VECTOR = "fake-v"
ENCODER = "fake:v"


@dataclass(frozen=True)
class Synthetic:
    """What `make_collection` stored: the collection, and per point its id, path, label and vector."""

    collection: str
    ids: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[str | None, ...]
    vectors: np.ndarray  # (N, D) as stored


def make_collection(
    store: VectorStore,
    folder: Path,
    n: int = 24,
    dim: int = 8,
    distance: str = "euclid",
    labels: tuple[str | None, ...] = ("a", "b", "c"),
    collection: str = "syn",
) -> Synthetic:
    """`n` points in one labelled cluster per label (point i has label i % len(labels)), each with a 24×16 image."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 5, (len(labels), dim))
    spec = VectorSpec(VECTOR, dim, distance)  # type: ignore[arg-type]
    store.ensure_collection(collection, [spec], {VECTOR: ENCODER})
    folder.mkdir(parents=True, exist_ok=True)
    points, rows = [], []
    for i in range(n):
        label = labels[i % len(labels)]
        vector = (centres[i % len(labels)] + rng.normal(0, 0.3, dim)).astype(np.float32)
        path = folder / f"img_{i:03d}.png"
        noise_image(i, (24, 16)).save(path)
        payload = {"path": str(path), **({"label": label} if label is not None else {}), "group": f"g{i % 2}"}
        points.append(Point(point_id_for(f"{collection}-{i}"), {VECTOR: vector}, payload))
        rows.append((points[-1].point_id, str(path), label, vector))
    store.upsert(collection, points)
    ids, paths, labs, vectors = zip(*rows, strict=True)
    return Synthetic(collection, ids, paths, labs, np.stack(vectors))
