"""Qdrant's scoring rules, written once: the similarity (higher is better) a query reports for each distance, and
the same rules computed client-side on fetched vectors (k-NN graphs, hubness, fusion statistics, calibration).

Cosine and dot are similarities already (stored cosine vectors are unit-length: both engines normalise them on
write); Euclid is negated; Manhattan becomes 1 − L1/dim, which for 0/1 bit vectors (phash) is the share of equal
bits; a multivector is scored by MAX_SIM: the sum over the query's vectors of the best dot product among the point's.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.core.records import Distance
from pipeline.store.points import VectorSpec


def to_score(distance: Distance, raw: float, dim: int) -> float:
    """The engine's raw value as a similarity (higher is better)."""
    if distance == "euclid":
        return -raw
    if distance == "manhattan":
        return 1.0 - raw / dim
    return raw


def float_tensor(array: np.ndarray) -> torch.Tensor:
    """A contiguous float32 CPU tensor sharing memory with `array` where it already is one."""
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32))


def is_binary(x: torch.Tensor) -> bool:
    """Every value is 0 or 1 (phash bits), so Manhattan distance is a matrix product."""
    return bool(((x == 0) | (x == 1)).all())


def prepare(vectors: np.ndarray, distance: Distance, device: torch.device) -> torch.Tensor:
    """(N, D) float32 tensor on `device`; rows unit-normalised for cosine (the engine stores them so)."""
    x = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32), device=device)
    if distance == "cosine":
        x = torch.nn.functional.normalize(x, dim=1)
    return x


def similarity(q: torch.Tensor, x: torch.Tensor, distance: Distance, binary: bool = False) -> torch.Tensor:
    """(B, N) similarity of every row of `q` (B, D) to every row of `x` (N, D), as the engine scores it.

    `q` and `x` must already be prepared (unit rows for cosine). `binary` says every value is 0 or 1, so the
    Manhattan distance is the Hamming distance |a| + |b| - 2 a·b and can be a matrix product.
    """
    if distance in ("cosine", "dot"):
        return q @ x.T
    if distance == "euclid":
        d2 = (q * q).sum(1, keepdim=True) + (x * x).sum(1)[None, :] - 2.0 * (q @ x.T)  # (B, N)
        return -d2.clamp_min(0.0).sqrt()
    dim = q.shape[1]
    hamming = q.sum(1, keepdim=True) + x.sum(1)[None, :] - 2.0 * (q @ x.T) if binary else None
    d1 = hamming if hamming is not None else torch.cdist(q, x, p=1.0)
    return 1.0 - d1 / dim


def maxsim(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(B, N) MAX_SIM of each query set `q` (B, K, D) to each stored set `x` (N, L, D) under the dot product."""
    qt, xt = float_tensor(q), float_tensor(x)
    rows = [torch.einsum("kd,nld->nkl", one, xt).amax(dim=2).sum(dim=1) for one in qt]  # a query at a time
    return torch.stack(rows).numpy() if rows else np.zeros((0, len(x)), dtype=np.float32)


def _pair_maxsim(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """(P,) MAX_SIM of each multivector a[i] (K, D) to b[i] (L, D), `chunk` pairs at a time to bound memory."""
    ta, tb = float_tensor(a), float_tensor(b)
    chunks = [
        torch.einsum("pkd,pld->pkl", ta[i : i + chunk], tb[i : i + chunk]).amax(dim=2).sum(dim=1)
        for i in range(0, len(ta), chunk)
    ]
    return torch.cat(chunks).numpy() if chunks else np.zeros(0, dtype=np.float32)


def pair_similarity(a: np.ndarray, b: np.ndarray, distance: Distance) -> np.ndarray:
    """(P,) similarity of each row of `a` (P, D) to the same row of `b` (P, D); rows that are multivectors,
    (P, K, D) and (P, L, D), are scored by MAX_SIM (dot product)."""
    if a.ndim == 3:
        return _pair_maxsim(a, b)
    qa = prepare(a, distance, torch.device("cpu"))
    qb = prepare(b, distance, torch.device("cpu"))
    if distance in ("cosine", "dot"):
        out = (qa * qb).sum(1)
    elif distance == "euclid":
        out = -(qa - qb).norm(dim=1)
    else:
        out = 1.0 - (qa - qb).abs().sum(1) / max(1, qa.shape[1])
    return out.numpy().astype(np.float32)


def score_matrix(q: np.ndarray, x: np.ndarray, spec: VectorSpec) -> np.ndarray:
    """(B, N) similarity of each query row (or set) to each stored row (or set), as a query reports it; computed in
    float64, so the Euclidean expansion |a|² + |b|² − 2a·b keeps a self-pair at 0 (float32 leaves ~1e-3)."""
    if spec.multivector:
        return maxsim(q, x).astype(np.float64)
    cpu = torch.device("cpu")
    tq, tx = prepare(q, spec.distance, cpu).double(), prepare(x, spec.distance, cpu).double()
    binary = spec.distance == "manhattan" and is_binary(tq) and is_binary(tx)
    with torch.inference_mode():
        return similarity(tq, tx, spec.distance, binary).numpy()
