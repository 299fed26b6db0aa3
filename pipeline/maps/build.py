"""`build_map`: a collection's stored vectors (sampled beyond a size) laid out in 2-D, as an `EmbeddingMap` that the
PNG, the HTML page, the CSV and `lookalike serve` all draw from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import LookalikeError
from pipeline.maps.colors import class_order, label_colours
from pipeline.maps.layout import Method, check_enough, project, resolve_method
from pipeline.maps.sample import read_sample
from pipeline.search.query import collection_vector
from pipeline.store import VectorStore

DEFAULT_SAMPLE = 20_000


@dataclass(frozen=True)
class MapConfig:
    """How to build a map.

    Attributes:
        method: auto (2-D vectors as they are, else UMAP), umap, tsne, pca or none.
        color_by: the payload field whose values colour the points (label, group, …).
        sample: most points drawn; beyond it a seeded random sample of this size.
        seed: for the sample and the layout.
        progress: show progress bars while reading.
    """

    method: Method | str = Method.AUTO
    color_by: str = "label"
    sample: int = DEFAULT_SAMPLE
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.sample < 1:
            raise LookalikeError(f"a map's sample size must be ≥ 1, got {self.sample}", setting="sample")


@dataclass(frozen=True)
class MapPoint:
    """One drawn point: its id, indexed path, the value of the colouring field (None when it has none), position."""

    point_id: str
    path: str
    label: str | None
    x: float
    y: float


@dataclass(frozen=True)
class EmbeddingMap:
    """A laid-out collection: what was drawn, how, and from how many points.

    Attributes:
        collection, encoder, vector: where the vectors came from (encoder spec and its named vector).
        method: the layout actually used (never auto).
        color_by: the payload field behind `MapPoint.label`.
        points: the drawn points, in point-id order.
        total: points of the collection with this vector; more than `len(points)` when sampled.
        seed: the sample's and the layout's seed.
        seconds: time to read and lay out.
    """

    collection: str
    encoder: str
    vector: str
    method: Method
    color_by: str
    points: tuple[MapPoint, ...]
    total: int
    seed: int
    seconds: float

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.total

    @property
    def classes(self) -> list[str | None]:
        """The distinct labels in legend order (None last)."""
        return class_order(p.label for p in self.points)

    @property
    def colours(self) -> dict[str | None, str]:
        """`#rrggbb` per label, as both the PNG and the HTML page draw them."""
        return label_colours(self.classes)

    def describe(self) -> str:
        """`1,500 points` or `20,000 of 130,000 points (random sample, seed 0)`: for titles and the terminal."""
        if not self.sampled:
            return f"{len(self.points):,} points"
        return f"{len(self.points):,} of {self.total:,} points (random sample, seed {self.seed})"


def build_map(store: VectorStore, collection: str, encoder: str | None, config: MapConfig) -> EmbeddingMap:
    """Read a collection's stored vectors (a seeded sample beyond `config.sample`) and lay them out in 2-D.

    Args:
        encoder: which encoder's vectors (its spec); None for the collection's only one.

    Raises:
        StoreError: no such collection.
        LookalikeError: the collection lacks the encoder or holds several and none was chosen, its vectors are
            multivectors, the method is unknown or unfit for the vectors, too few points have the vector, or the
            layout failed.
    """
    started = time.perf_counter()
    spec, spec_text = collection_vector(store, collection, encoder)
    if spec.multivector:
        raise LookalikeError(
            f"collection {collection!r} stores {spec_text} as multivectors (a set of vectors per image): a map draws "
            "one vector per image; choose another encoder",
            setting="encoder",
        )
    method = resolve_method(config.method, spec.dim)
    sample = read_sample(store, collection, spec, config.sample, config.seed, config.progress)
    check_enough(method, len(sample.ids), f"collection {collection!r} ({spec_text} vectors)")
    coords = project(sample.vectors, method, spec.distance, config.seed)  # (N, 2)
    points = tuple(
        MapPoint(pid, str(payload.get("path", "")), _label(payload, config.color_by), float(x), float(y))
        for pid, payload, (x, y) in zip(sample.ids, sample.payloads, coords, strict=True)
    )
    seconds = time.perf_counter() - started
    return EmbeddingMap(
        collection, spec_text, spec.name, method, config.color_by, points, sample.total, config.seed, seconds
    )


def _label(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    return None if value is None or value == "" else str(value)
