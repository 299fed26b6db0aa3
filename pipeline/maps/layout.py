"""2-D layouts of (N, D) vectors: UMAP (umap-learn), t-SNE and PCA (scikit-learn), or the vectors as they are when
they are 2-D already. The heavy libraries are imported only when their method is used."""

from __future__ import annotations

import warnings
from enum import StrEnum

import numpy as np

from pipeline.core.errors import LookalikeError
from pipeline.core.records import Distance
from pipeline.encoders.base import l2_normalise


class Method(StrEnum):
    """How a map is laid out; AUTO is NONE for 2-D vectors and UMAP otherwise."""

    AUTO = "auto"
    UMAP = "umap"
    TSNE = "tsne"
    PCA = "pca"
    NONE = "none"


MIN_POINTS = {Method.UMAP: 5, Method.TSNE: 5, Method.PCA: 3, Method.NONE: 1}
UMAP_NEIGHBOURS = 15
TSNE_PERPLEXITY = 30.0
_METRICS: dict[str, str] = {"cosine": "cosine", "dot": "cosine", "euclid": "euclidean", "manhattan": "manhattan"}
_EXTRA = "pip install 'lookalike[maps]'"


def resolve_method(method: Method | str, dim: int) -> Method:
    """The method a map of `dim`-d vectors uses: AUTO becomes NONE for 2-D vectors, else UMAP.

    Raises:
        LookalikeError: an unknown method, NONE for vectors that are not 2-D, or vectors under 2-D.
    """
    try:
        chosen = Method(method)
    except ValueError:
        known = ", ".join(m.value for m in Method)
        raise LookalikeError(f"unknown map method {method!r}; known: {known}", setting="method") from None
    if dim < 2:
        raise LookalikeError(f"a map needs vectors of 2 or more dimensions; these are {dim}-d")
    if chosen is Method.AUTO:
        return Method.NONE if dim == 2 else Method.UMAP
    if chosen is Method.NONE and dim != 2:
        raise LookalikeError(
            f"method none draws the vectors as they are and needs 2-d vectors; these are {dim}-d (use umap, tsne "
            "or pca)",
            setting="method",
        )
    return chosen


def check_enough(method: Method, n: int, what: str) -> None:
    """Refuse a layout of too few points.

    Raises:
        LookalikeError: fewer than `MIN_POINTS[method]` points; `what` names them (e.g. "collection 'x'").
    """
    need = MIN_POINTS[method]
    if n < need:
        hint = " (or use --method pca, which needs 3)" if method in (Method.UMAP, Method.TSNE) else ""
        raise LookalikeError(f"{what} has {n} points to draw; a {method.value} map needs at least {need}{hint}")


def project(vectors: np.ndarray, method: Method, distance: Distance, seed: int) -> np.ndarray:
    """Lay (N, D) vectors out in 2-D.

    Args:
        vectors: (N, D) float vectors, N ≥ `MIN_POINTS[method]`.
        method: a resolved method (not AUTO).
        distance: the collection's distance; UMAP and t-SNE use the matching metric (cosine for cosine and dot), PCA
            runs on unit rows for cosine.
        seed: makes UMAP (single-threaded then), t-SNE and PCA reproducible.

    Returns:
        (N, 2) float64 finite coordinates.

    Raises:
        LookalikeError: the method's library is missing, or it failed or gave non-finite coordinates.
    """
    data = np.asarray(vectors, dtype=np.float32)  # (N, D)
    if method is Method.NONE:
        coords = data[:, :2].astype(np.float64)
    elif method is Method.PCA:
        coords = _pca(l2_normalise(data) if distance == "cosine" else data, seed)
    elif method is Method.TSNE:
        coords = _tsne(data, _METRICS[distance], seed)
    elif method is Method.UMAP:
        coords = _umap(data, _METRICS[distance], seed)
    else:
        raise LookalikeError(f"map method {method.value!r} must be resolved first (resolve_method)")
    if coords.shape != (len(data), 2) or not np.isfinite(coords).all():
        raise LookalikeError(
            f"the {method.value} layout gave non-finite coordinates; try another layout method", setting="method"
        )
    return coords


def _pca(data: np.ndarray, seed: int) -> np.ndarray:
    try:
        from sklearn.decomposition import PCA
    except ImportError as e:
        raise LookalikeError(f"PCA maps need scikit-learn: {_EXTRA}") from e
    return np.asarray(PCA(n_components=2, random_state=seed).fit_transform(data), dtype=np.float64)


def _tsne(data: np.ndarray, metric: str, seed: int) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError as e:
        raise LookalikeError(f"t-SNE maps need scikit-learn: {_EXTRA}") from e
    perplexity = min(TSNE_PERPLEXITY, (len(data) - 1) / 3)  # sklearn needs perplexity < N
    tsne = TSNE(n_components=2, perplexity=perplexity, metric=metric, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(data), dtype=np.float64)


def _umap(data: np.ndarray, metric: str, seed: int) -> np.ndarray:
    try:
        import umap
    except ImportError as e:
        raise LookalikeError(f"UMAP maps need umap-learn: {_EXTRA} (or use the pca method)", setting="method") from e
    reducer = umap.UMAP(
        n_components=2, n_neighbors=min(UMAP_NEIGHBOURS, len(data) - 1), metric=metric, random_state=seed, n_jobs=1
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # spectral-init fallbacks on tiny or disconnected data
            return np.asarray(reducer.fit_transform(data), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError) as e:
        raise LookalikeError(
            f"UMAP failed on {len(data)} points ({e}); try the pca or tsne method", setting="method"
        ) from e
