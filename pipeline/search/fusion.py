"""Fusion of several encoders' candidate scores, and the calibration that turns them into confidences.

For encoder e, query q and candidate c with similarity s[e, q, c] (NaN where either image has no vector):

    z[e, q, c] = (s[e, q, c] - mean[e]) / std[e]                     per-encoder z-score
    f[q, c]    = sum_e w[e] m[e, q, c] z[e, q, c] / sum_e w[e] m[e, q, c]
                                                                    m = 1 where s is finite, else 0
    p[q, c]    = exp(f[q, c] / T) / sum_k exp(f[q, k] / T)          over the candidates k with a finite f

so weights re-normalise over the encoders that scored a candidate (no face → the other encoders decide),
a candidate no encoder scored gets f = NaN and confidence 0 (the lowest), and a query no encoder could embed
gets 1/C everywhere. mean/std are fitted on training tasks' candidate scores and T by minimising the negative
log-likelihood of the true candidates (with `--weights fit`, the weights too, jointly with T); `Calibration`
holds them and is saved as JSON beside a run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from pipeline.core.errors import LookalikeError

TEMPERATURE_BOUNDS = (1e-3, 1e3)
FIT_WEIGHTS = "fit"  # --weights fit: learn the weights on the training tasks
_MIN_STD = 1e-12


@dataclass(frozen=True)
class Calibration:
    """Everything needed to fuse and calibrate scores again: per-encoder normalisation, weights, temperature.

    Attributes:
        encoders: encoder spec strings, in the order of the score stacks.
        weights: fusion weight per encoder, summing to 1.
        mean, std: per-encoder mean and standard deviation of candidate scores on the fitting tasks.
        temperature: softmax temperature T (confidence = softmax(fused / T) over a task's candidates).
        seed: the seed the fitting tasks were drawn with.
        split: where the fitting tasks came from (source, pairs, tasks, candidates, val_fraction …).
        nll: mean negative log-likelihood of the true candidate at `temperature` (None: nothing to fit on).
        weights_fitted: the weights were fitted on the training tasks (`--weights fit`), not given.
    """

    encoders: tuple[str, ...]
    weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    temperature: float = 1.0
    seed: int = 0
    split: Mapping[str, Any] = field(default_factory=dict)
    nll: float | None = None
    weights_fitted: bool = False

    def fuse(self, scores: np.ndarray) -> np.ndarray:
        """(E, Q, C) per-encoder scores → (Q, C) fused z-scores (NaN where no encoder scored)."""
        return fuse_scores(scores, self.mean, self.std, self.weights)

    def confidences(self, scores: np.ndarray) -> np.ndarray:
        """(E, Q, C) per-encoder scores → (Q, C) confidences in [0, 1], each row summing to 1."""
        return confidences(self.fuse(scores), self.temperature)

    def write_json(self, path: Path) -> Path:
        """Write as indented JSON, creating parent folders."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a calibration written by `write_json`.

        Raises:
            LookalikeError: the file is missing, not JSON, or lacks a field.
        """
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                encoders=tuple(data["encoders"]),
                weights=tuple(float(w) for w in data["weights"]),
                mean=tuple(float(m) for m in data["mean"]),
                std=tuple(float(s) for s in data["std"]),
                temperature=float(data["temperature"]),
                seed=int(data.get("seed", 0)),
                split=dict(data.get("split") or {}),
                nll=data.get("nll"),
                weights_fitted=bool(data.get("weights_fitted", False)),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LookalikeError(f"cannot read calibration {path}: {type(e).__name__}: {e}") from e


def parse_encoder_list(text: str) -> tuple[str, ...]:
    """Split `dlib,clip:ViT-B-32@none` into encoder specs.

    Raises:
        LookalikeError: an empty item, or the same spec twice.
    """
    specs = tuple(item.strip() for item in text.split(","))
    if not all(specs) or len(set(specs)) != len(specs):
        raise LookalikeError(
            f"encoder {text!r}: expected distinct comma-separated specs, e.g. dlib,phash:8", setting="encoder"
        )
    return specs


def parse_weights_or_fit(text: str | None, n: int) -> tuple[float, ...] | None:
    """`parse_weights`, except that `fit` gives None: fit the weights on training tasks (several encoders only)."""
    return None if n > 1 and text is not None and text.strip() == FIT_WEIGHTS else parse_weights(text, n)


def parse_weights(text: str | None, n: int) -> tuple[float, ...]:
    """Fusion weights from `0.34,0.66` (one per encoder, ≥ 0, some > 0), scaled to sum 1; None/empty → equal.

    Raises:
        LookalikeError: not numbers, the wrong count, negative or all zero, `fit` (nothing to fit on here), or any
            weights for a single encoder.
    """
    if text is None or not text.strip():
        return (1.0 / n,) * n
    if n == 1:
        raise LookalikeError(
            f"weights {text!r}: weights fuse several encoders (A,B); one encoder here", setting="weights"
        )
    if text.strip() == FIT_WEIGHTS:
        raise LookalikeError(
            "weights 'fit' needs training pairs: only `submit` and `eval candidates` have them", setting="weights"
        )
    try:
        weights = [float(item) for item in text.split(",")]
    except ValueError:
        raise LookalikeError(
            f"weights {text!r}: expected comma-separated numbers, e.g. 0.34,0.66", setting="weights"
        ) from None
    if len(weights) != n:
        raise LookalikeError(
            f"weights {text!r}: {len(weights)} weights for {n} encoders; give one per encoder", setting="weights"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise LookalikeError(f"weights {text!r}: weights must be finite, ≥ 0, and not all 0", setting="weights")
    total = sum(weights)
    return tuple(w / total for w in weights)


def fit_normalisation(scores: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-encoder mean and standard deviation of the finite scores of an (E, Q, C) stack.

    An encoder with fewer than two finite scores, or constant ones, gets std 1 (its z-scores are then just
    centred), so fusion never divides by zero.
    """
    means, stds = [], []
    for layer in np.asarray(scores, dtype=np.float64):
        finite = layer[np.isfinite(layer)]
        mean = float(finite.mean()) if finite.size else 0.0
        std = float(finite.std()) if finite.size > 1 else 1.0
        means.append(mean)
        stds.append(std if std > _MIN_STD else 1.0)
    return tuple(means), tuple(stds)


def fuse_scores(
    scores: np.ndarray, mean: Sequence[float], std: Sequence[float], weights: Sequence[float]
) -> np.ndarray:
    """Weighted mean of per-encoder z-scores over the encoders that scored each candidate.

    Args:
        scores: (E, Q, C) similarities, NaN where an encoder has no score.
        mean, std, weights: (E,) each; weights ≥ 0.

    Returns:
        (Q, C) fused scores; NaN where no encoder with a positive weight scored the candidate.
    """
    s = np.asarray(scores, dtype=np.float64)  # (E, Q, C)
    if s.ndim != 3 or not len(mean) == len(std) == len(weights) == s.shape[0]:
        raise ValueError(f"fuse_scores: scores {s.shape} need (E, Q, C) with E = {len(weights)} weights/means/stds")
    present = np.isfinite(s)  # (E, Q, C)
    z = (np.where(present, s, 0.0) - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]
    w = np.asarray(weights, dtype=np.float64)[:, None, None] * present  # (E, Q, C) weight where scored
    total = w.sum(axis=0)  # (Q, C)
    fused = (w * z).sum(axis=0)
    return np.divide(fused, total, out=np.full(total.shape, np.nan), where=total > 0)


def _log_softmax(fused: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise log-softmax of fused / T over finite entries; -inf elsewhere, NaN rows with no finite entry."""
    logits = np.where(np.isfinite(fused), fused / temperature, -np.inf)  # (Q, C)
    top = logits.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))


def confidences(fused: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of fused scores / T over each row's finite entries: (Q, C) in [0, 1], rows summing to 1.

    A candidate with a NaN score gets 0; a row with no finite score gets 1/C everywhere.
    """
    f = np.asarray(fused, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        probs = np.exp(_log_softmax(f, temperature))
    empty = ~np.isfinite(f).any(axis=1)
    probs[empty] = 1.0 / f.shape[1] if f.shape[1] else 0.0
    return np.nan_to_num(probs, nan=0.0)


def nll(fused: np.ndarray, answers: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true candidates under softmax(fused / T), over the rows where the
    true candidate has a finite score (others cannot inform T)."""
    f = np.asarray(fused, dtype=np.float64)
    a = np.asarray(answers, dtype=np.intp)
    rows = np.flatnonzero(np.isfinite(f[np.arange(len(a)), a]))
    if rows.size == 0:
        return float("nan")
    log_p = _log_softmax(f[rows], temperature)[np.arange(rows.size), a[rows]]
    return float(-log_p.mean())


def fit_temperature(fused: np.ndarray, answers: np.ndarray) -> tuple[float, float | None]:
    """The T in TEMPERATURE_BOUNDS minimising `nll` (searched over log T).

    Returns:
        (T, its NLL); (1.0, None) when no row has a finite true-candidate score.
    """
    if not np.isfinite(nll(fused, answers, 1.0)):
        return 1.0, None
    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    result = minimize_scalar(lambda log_t: nll(fused, answers, math.exp(log_t)), bounds=(low, high), method="bounded")
    temperature = math.exp(float(result.x))
    return temperature, nll(fused, answers, temperature)


def fit_weights(
    scores: np.ndarray, answers: np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> tuple[tuple[float, ...], float, float | None]:
    """Fusion weights and temperature minimising `nll` jointly (Nelder–Mead from equal weights).

    The weights are a softmax of E−1 free logits (the first is 0), so they stay positive and sum to 1.

    Returns:
        (weights, T, NLL); equal weights and T = 1, NLL None when no row has a finite true-candidate score.
    """
    n = len(mean)
    equal = (1.0 / n,) * n
    start_t, start_loss = fit_temperature(fuse_scores(scores, mean, std, equal), answers)
    if start_loss is None or n == 1:
        return equal, start_t, start_loss

    def unpack(theta: np.ndarray) -> tuple[tuple[float, ...], float]:
        logits = np.concatenate([[0.0], theta[:-1]])
        weights = np.exp(logits - logits.max())
        return tuple(float(w) for w in weights / weights.sum()), math.exp(float(np.clip(theta[-1], -7.0, 7.0)))

    def loss(theta: np.ndarray) -> float:
        weights, temperature = unpack(theta)
        return nll(fuse_scores(scores, mean, std, weights), answers, temperature)

    start = np.array([*([0.0] * (n - 1)), math.log(start_t)])
    result = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7})
    weights, temperature = unpack(result.x)
    return weights, temperature, float(result.fun)


def label_free_calibration(scores: np.ndarray, encoders: Sequence[str], weights: Sequence[float]) -> Calibration:
    """Normalisation fitted on the scores alone (no answers), the given weights and temperature 1: fusion for tasks
    with no training tasks to calibrate on (Omniglot one-shot). Rankings, and so top-k accuracy, do not depend on
    the temperature; confidences are then uncalibrated.
    """
    mean, std = fit_normalisation(scores)
    split = {"source": "the scored tasks themselves, without their answers", "tasks": scores.shape[1]}
    return Calibration(tuple(encoders), tuple(float(w) for w in weights), mean, std, 1.0, split=split)


def fit_calibration(
    scores: np.ndarray,
    answers: np.ndarray,
    encoders: Sequence[str],
    weights: Sequence[float] | None,
    seed: int = 0,
    split: Mapping[str, Any] | None = None,
) -> Calibration:
    """Fit per-encoder normalisation and the temperature (and, when `weights` is None, the weights) on
    training tasks with known answers.

    Args:
        scores: (E, Q, C) per-encoder similarities of the training tasks, NaN where missing.
        answers: (Q,) index of each task's true candidate.
        encoders, weights: (E,) spec strings and fusion weights (summing to 1); weights None = fit them.
        seed, split: recorded as they are, to say which tasks the calibration saw.
    """
    mean, std = fit_normalisation(scores)
    if weights is None:
        fitted, temperature, loss = fit_weights(scores, answers, mean, std)
    else:
        fitted = tuple(float(w) for w in weights)
        temperature, loss = fit_temperature(fuse_scores(scores, mean, std, fitted), answers)
    return Calibration(
        tuple(encoders), fitted, mean, std, temperature, seed, dict(split or {}), loss, weights_fitted=weights is None
    )
