"""Threshold calibration for dedup: from labelled pairs, the lowest threshold that reaches a target precision."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import LookalikeError
from pipeline.core.files import read_table
from pipeline.encoders.base import Encoder
from pipeline.metrics.copies import recall_at_precision
from pipeline.search.query import resolve_queries
from pipeline.store import VectorSpec, VectorStore
from pipeline.store.scoring import pair_similarity

_TRUE = {"1", "true", "yes", "same", "y", "t"}
_FALSE = {"0", "false", "no", "different", "n", "f"}


@dataclass(frozen=True)
class LabelledPair:
    """Two images (paths, or point ids) and whether they are duplicates."""

    left: str
    right: str
    same: bool


@dataclass(frozen=True)
class Calibration:
    """The chosen operating point.

    Attributes:
        target_precision: what was asked for.
        threshold: the lowest threshold whose precision is at least the target (ties: the highest of those
            with the same recall, which accepts no more wrong pairs).
        precision: precision of `score >= threshold` on the scored pairs.
        recall: share of the scored duplicate pairs accepted there.
        pairs: labelled pairs read; same_pairs: of which duplicates; unscored: pairs an image of which had
            no vector (left out of both numbers).
    """

    target_precision: float
    threshold: float
    precision: float
    recall: float
    pairs: int
    same_pairs: int
    unscored: int


def _flag(value: str, row: int, path: Path) -> bool:
    text = value.strip().lower()
    if text not in _TRUE | _FALSE:
        raise LookalikeError(f"{path}: row {row}: same={value!r}; use 1/0 or true/false")
    return text in _TRUE


def read_labelled_pairs(path: Path) -> list[LabelledPair]:
    """Pairs from a CSV with columns left, right, same; relative paths are relative to the CSV's folder.

    Raises:
        LookalikeError: the file is missing, lacks a column, or has a `same` that is not 1/0/true/false.
    """
    if not path.is_file():
        raise LookalikeError(
            f"{path}: no such labelled-pairs file (a CSV with columns left,right,same)", setting="pairs"
        )
    frame = read_table(path, "labelled pairs", setting="pairs", infer_schema=False)
    if missing := [c for c in ("left", "right", "same") if c not in frame.columns]:
        raise LookalikeError(f"{path}: missing column(s) {', '.join(missing)}; need left,right,same", setting="pairs")

    def where(value: str) -> str:
        candidate = path.parent / value
        return str(candidate) if not Path(value).is_absolute() and candidate.exists() else value

    return [
        LabelledPair(where(r["left"] or ""), where(r["right"] or ""), _flag(r["same"] or "", i, path))
        for i, r in enumerate(frame.iter_rows(named=True), start=2)
    ]


def score_labelled_pairs(
    pairs: Sequence[LabelledPair],
    store: VectorStore,
    collection: str,
    spec: VectorSpec,
    encoder: Callable[[], Encoder],
) -> np.ndarray:
    """(P,) similarity of each pair as Qdrant scores it; NaN where an image has no vector.

    Images already in the collection use their stored vector; others are embedded with `encoder()` (built once).
    """
    images = list(dict.fromkeys(p for pair in pairs for p in (pair.left, pair.right)))
    resolved = resolve_queries(images, store, collection, spec, encoder)
    vectors = {r.query: r.vector for r in resolved if r.vector is not None}
    ok = np.array([p.left in vectors and p.right in vectors for p in pairs], dtype=bool)
    scores = np.full(len(pairs), np.nan)
    if ok.any():
        good = [p for p, keep in zip(pairs, ok, strict=True) if keep]
        left = np.stack([vectors[p.left] for p in good])  # (S, D)
        right = np.stack([vectors[p.right] for p in good])
        scores[ok] = pair_similarity(left, right, spec.distance)
    return scores


def calibrate_threshold(scores: npt.ArrayLike, same: npt.ArrayLike, precision: float) -> Calibration:
    """The lowest threshold at which `score >= threshold` reaches `precision`, and the recall there.

    Args:
        scores: (P,) similarity per pair; NaN = unscored (left out and counted).
        same: (P,) bool, True for a duplicate pair.
        precision: target precision in (0, 1].

    Returns:
        The operating point.

    Raises:
        LookalikeError: no duplicate pair could be scored, or no threshold reaches the precision.
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    scored = ~np.isnan(s)
    n_same = int(y[scored].sum())
    if n_same == 0:
        raise LookalikeError("calibration: no duplicate pair (same=1) could be scored; check the pairs file")
    try:
        recall, threshold = recall_at_precision(s[scored], y[scored], n_same, precision)
    except ValueError as e:
        raise LookalikeError(f"target precision {precision}: {e}", setting="precision") from e
    if not np.isfinite(threshold):
        raise LookalikeError(
            f"target precision {precision}: no threshold reaches it on these {int(scored.sum())} pairs; "
            "lower the target or add labelled pairs",
            setting="precision",
        )
    accepted = s[scored] >= threshold
    reached = float(y[scored][accepted].mean())
    return Calibration(precision, threshold, reached, recall, len(s), int(y.sum()), int((~scored).sum()))
