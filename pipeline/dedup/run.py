"""`lookalike dedup` as one library call: choose the threshold, find the groups, write them, plan or make moves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pipeline.core.errors import LookalikeError
from pipeline.core.signing import SigningKey
from pipeline.dedup.find import DedupConfig, DedupResult, find_duplicates
from pipeline.dedup.gallery import GalleryLimits
from pipeline.dedup.graph import GraphOptions
from pipeline.dedup.moves import Move, apply_moves, manifest_path, plan_moves, write_manifest
from pipeline.dedup.output import DedupFiles, write_dedup_outputs
from pipeline.dedup.threshold import Calibration, calibrate_threshold, read_labelled_pairs, score_labelled_pairs
from pipeline.encoders.base import Encoder
from pipeline.search.query import collection_vector
from pipeline.store import VectorSpec, VectorStore


@dataclass(frozen=True)
class ThresholdChoice:
    """Either a fixed `threshold`, or a target `precision` calibrated on labelled `pairs` (CSV left,right,same)."""

    threshold: float | None = None
    precision: float | None = None
    pairs: Path | None = None

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.precision is None):
            raise LookalikeError(
                "give either a fixed threshold or a target precision (with labelled pairs), not both or neither",
                setting="threshold",
            )
        if self.precision is not None and self.pairs is None:
            raise LookalikeError(
                "a target precision needs labelled pairs to calibrate on: a CSV with columns left,right,same",
                setting="pairs",
            )


@dataclass(frozen=True)
class DedupRequest:
    """Everything `lookalike dedup` was asked for, built once at the CLI edge; `run_dedup` narrows it to the
    `DedupConfig` of the search once the threshold is known (fixed, or calibrated on labelled pairs).

    Attributes:
        graph: how the k-NN graph is built (k, exact or ann, block size, HNSW beam, recall sample).
        encoder: which of the collection's vectors to compare (None: its only one).
        move_to: where non-keepers go; nothing moves unless `apply`.
        signing_key: signs the move manifests (needed with `move_to`), so only lookalike's own can be undone.
    """

    collection: str
    out: Path
    choice: ThresholdChoice
    graph: GraphOptions = field(default_factory=GraphOptions)
    ingest_report: Path | None = None
    encoder: str | None = None
    move_to: Path | None = None
    apply: bool = False
    progress: bool = True
    gallery: GalleryLimits = field(default_factory=GalleryLimits)
    signing_key: SigningKey | None = None

    def __post_init__(self) -> None:
        if self.apply and self.move_to is None:
            raise LookalikeError(
                "applying moves needs a folder to move non-keepers to (nothing is ever deleted)", setting="move_to"
            )
        if self.move_to is not None and self.signing_key is None:
            raise LookalikeError("moving files needs a signing key for the manifest (lookalike's CLI passes one)")


@dataclass(frozen=True)
class DedupRun:
    """A finished run: the groups, the files written, the calibration and the moves (planned or made)."""

    result: DedupResult
    files: DedupFiles
    calibration: Calibration | None
    moves: tuple[Move, ...]
    manifest: Path | None
    applied: bool = False


def resolve_threshold(
    store: VectorStore, request: DedupRequest, spec: VectorSpec, encoder: Callable[[], Encoder]
) -> tuple[float, Calibration | None]:
    """The fixed threshold, or the one calibrated on the labelled pairs (images not indexed are embedded)."""
    choice = request.choice
    if choice.threshold is not None:
        return choice.threshold, None
    assert choice.pairs is not None and choice.precision is not None  # checked by ThresholdChoice
    pairs = read_labelled_pairs(choice.pairs)
    scores = score_labelled_pairs(pairs, store, request.collection, spec, encoder)
    calibration = calibrate_threshold(scores, [p.same for p in pairs], choice.precision)
    return calibration.threshold, calibration


def _moves(request: DedupRequest, result: DedupResult) -> tuple[tuple[Move, ...], Path | None]:
    """Plan the moves; make them with --apply (manifest in --move-to), else write the plan to --out."""
    if request.move_to is None or request.signing_key is None:
        return (), None
    planned = plan_moves(result.members, request.move_to, result.config.threshold)
    if not request.apply:
        return tuple(planned), write_manifest(planned, request.out / "moves-planned.csv", request.signing_key)
    manifest = manifest_path(request.move_to)
    return tuple(apply_moves(planned, result.members, manifest, request.signing_key)), manifest


def run_dedup(
    store: VectorStore, request: DedupRequest, device: torch.device, make_encoder: Callable[[str], Encoder]
) -> DedupRun:
    """Find exact and near-duplicate groups of a collection, write groups/pairs/summary/gallery to `request.out`,
    and plan (dry run) or make (`apply`) the moves of non-keepers.

    Args:
        store: the store.
        request: what to do.
        device: where blocked top-k runs.
        make_encoder: builds the collection's encoder from its spec, only if calibration pairs need embedding.

    Returns:
        The run.

    Raises:
        LookalikeError: bad options, unknown collection or encoder, calibration impossible.
    """
    spec, encoder_spec = collection_vector(store, request.collection, request.encoder)
    threshold, calibration = resolve_threshold(store, request, spec, lambda: make_encoder(encoder_spec))
    config = DedupConfig(request.collection, threshold, request.graph, request.ingest_report, request.progress)
    result = find_duplicates(store, config, spec, device)
    moves, manifest = _moves(request, result)
    extra: dict[str, object] = {"encoder": encoder_spec, "device": str(device)}
    if calibration is not None:
        extra["calibration"] = {**asdict(calibration), "pairs_file": str(request.choice.pairs)}
    if request.move_to is not None:
        statuses: dict[str, int] = dict(Counter(m.status for m in moves))
        where = {"move_to": str(request.move_to), "manifest": str(manifest), "applied": request.apply}
        extra["moves"] = {**where, **statuses}
    files = write_dedup_outputs(result, request.out, extra, request.gallery)
    return DedupRun(result, files, calibration, moves, manifest, request.apply and request.move_to is not None)
