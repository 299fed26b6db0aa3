"""One input's way through an embedding, shared by every ingest: decode + `prepare` (`prepare_image`, in a worker)
and `encode` (`encode_prepared`, in the encoding process), and the records between them.

Imports no torch, so that a Ray worker that decodes for an encoder with no model (phash, dlib) starts without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import DecodeLimits, load_rgb
from pipeline.encoders.base import Encoder

EmbedStatus = Literal["ok", "no_face", "failed"]


@dataclass(frozen=True)
class EmbeddedItem:
    """The result for one input path: a vector, or the reason there is none."""

    index: int
    status: EmbedStatus
    vector: np.ndarray | None
    reason: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class PreparedItem:
    """One input decoded and `prepare`d (CPU work, in a worker), or the reason it could not be."""

    index: int
    item: Any
    width: int
    height: int
    error: str


def prepare_image(index: int, path: str, encoder: Encoder, limits: DecodeLimits) -> PreparedItem:
    """Decode one file and run `encoder.prepare` on it; never raises on a bad file (the reason is kept instead).

    What every decode worker runs: a DataLoader worker (`pipeline.index.embed`) or a Ray task (`ray_workers`).
    """
    try:
        image = load_rgb(path, limits)
        width, height = image.size
        return PreparedItem(index, encoder.prepare(image), width, height, "")
    except ImageDecodeError as e:
        return PreparedItem(index, None, 0, 0, str(e))
    except Exception as e:  # a bad file must never stop the run: keep the reason instead
        return PreparedItem(index, None, 0, 0, f"{type(e).__name__}: {e}")


def encode_prepared(batch: Sequence[PreparedItem], encoder: Encoder) -> list[EmbeddedItem]:
    """`encoder.encode` the items that were decoded, in one call; each input's result, in the batch's order.

    What every encoding process runs: the ingest's own process (`pipeline.index.embed`), an encode actor or, for an
    encoder with no model, a decode task (`ray_workers`).
    """
    decoded = [p for p in batch if not p.error]
    encoded = encoder.encode([p.item for p in decoded]) if decoded else None
    by_index: dict[int, EmbeddedItem] = {}
    for row, p in enumerate(decoded):
        assert encoded is not None
        if encoded.ok[row]:
            by_index[p.index] = EmbeddedItem(
                p.index, "ok", encoded.vectors[row], encoded.notes[row] or "", p.width, p.height
            )
        else:
            reason = encoded.notes[row] or "encoder could not embed this image"
            by_index[p.index] = EmbeddedItem(p.index, "no_face", None, reason, p.width, p.height)
    for p in batch:
        if p.error:
            by_index[p.index] = EmbeddedItem(p.index, "failed", None, p.error)
    return [by_index[p.index] for p in batch]
