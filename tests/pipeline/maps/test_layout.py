"""2-D layouts: every method gives finite (N, 2) coordinates, reproducibly; 2-D vectors are drawn as they are;
unfit methods and too few points are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import LookalikeError
from pipeline.maps.colors import MAX_LEGEND, PALETTE, UNLABELLED, class_order, label_colours
from pipeline.maps.layout import MIN_POINTS, Method, check_enough, project, resolve_method


def _clusters(n: int = 30, dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, dim))
    return (centres[np.arange(n) % 3] + rng.normal(0, 0.2, (n, dim))).astype(np.float32)


FAST = [Method.PCA, Method.TSNE]


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("distance", ["cosine", "euclid"])
def test_fast_methods_give_finite_n_by_2_reproducibly(method: Method, distance: str) -> None:
    vectors = _clusters()
    coords = project(vectors, method, distance, seed=3)  # type: ignore[arg-type]
    assert coords.shape == (30, 2) and coords.dtype == np.float64 and np.isfinite(coords).all()
    np.testing.assert_array_equal(coords, project(vectors, method, distance, seed=3))  # type: ignore[arg-type]


@pytest.mark.slow  # numba compiles umap-learn's kernels on first use: ~15 s of CPU per process
def test_umap_gives_finite_n_by_2_and_keeps_clusters_apart() -> None:
    vectors = _clusters()
    coords = project(vectors, Method.UMAP, "cosine", seed=0)
    assert coords.shape == (30, 2) and np.isfinite(coords).all()
    labels = np.arange(30) % 3
    centres = np.stack([coords[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(coords[labels == k] - centres[k], axis=1).max() for k in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > spread  # three tight, separated clusters stay three clusters
    np.testing.assert_array_equal(coords, project(vectors, Method.UMAP, "cosine", seed=0))


def test_pca_of_cosine_vectors_ignores_their_length() -> None:
    vectors = _clusters()
    scaled = vectors * np.linspace(1, 50, 30, dtype=np.float32)[:, None]  # same directions, other lengths
    np.testing.assert_allclose(
        project(vectors, Method.PCA, "cosine", 0), project(scaled, Method.PCA, "cosine", 0), atol=1e-5
    )


def test_none_draws_2d_vectors_as_they_are() -> None:
    vectors = np.array([[0.5, -1.0], [2.0, 3.0], [-4.0, 0.25]], dtype=np.float32)
    np.testing.assert_array_equal(project(vectors, Method.NONE, "euclid", 0), vectors.astype(np.float64))


@pytest.mark.parametrize(
    ("method", "dim", "expected"),
    [("auto", 2, Method.NONE), ("auto", 128, Method.UMAP), ("pca", 2, Method.PCA), ("tsne", 64, Method.TSNE)],
)
def test_resolve_method(method: str, dim: int, expected: Method) -> None:
    assert resolve_method(method, dim) is expected


@pytest.mark.parametrize(
    ("method", "dim", "message"),
    [
        ("none", 128, "needs 2-d vectors; these are 128-d"),
        ("isomap", 8, "unknown map method 'isomap'"),
        ("pca", 1, "these are 1-d"),
    ],
)
def test_resolve_method_refuses(method: str, dim: int, message: str) -> None:
    with pytest.raises(LookalikeError, match=message):
        resolve_method(method, dim)


@pytest.mark.parametrize("method", [Method.UMAP, Method.TSNE, Method.PCA])
def test_too_few_points_is_one_line_naming_the_minimum(method: Method) -> None:
    need = MIN_POINTS[method]
    check_enough(method, need, "collection 'x'")  # enough
    with pytest.raises(LookalikeError, match=rf"collection 'x' has {need - 1} points to draw; .* at least {need}"):
        check_enough(method, need - 1, "collection 'x'")


def test_colours_palette_then_spread_hues_and_grey_for_none() -> None:
    few = class_order(["b", None, "a", "10", "9"])
    assert few == ["9", "10", "a", "b", None]  # numbers by value, then text, no value last
    colours = label_colours(few)
    assert [colours[c] for c in few[:-1]] == list(PALETTE[:4]) and colours[None] == UNLABELLED
    many = [f"p{i:03d}" for i in range(MAX_LEGEND + 5)]
    spread = label_colours(many)
    assert len(set(spread.values())) == len(many) and UNLABELLED not in spread.values()
