"""`dedup --new`: which files of a new folder duplicate images already indexed in a collection, or each other,
without rebuilding the collection's k-NN graph and without writing to the store.

Every entry the folder lists ends in exactly one status:

- exact: the same bytes as an indexed point (ingest keys points by uuid5(sha256), so this is one lookup by id);
- indexed: the file itself is already in the collection (its path is recorded on its point); `dedup -c` covers it;
- near: embedded with the collection's own encoder, an indexed point scores at or above the threshold among its k
  nearest (batched store queries through the HNSW index; every point with method exact);
- within_new: a duplicate of another new file: the same bytes as a file listed before it, or similar at or above the
  threshold to a new file that ranks before it as a keeper (most pixels, largest file, then path), so one file of
  each pair is never flagged;
- unique: none of the above;
- skipped: not an image file name (as ingest skips it); failed: could not be listed, read, decoded or embedded.

Cost: one hash per file, one id lookup per distinct content, one embedding and one store query per distinct new
content, and an exact top-k among the new vectors only: time grows with the new files (× log N for the queries),
never with N².
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.errors import LookalikeError
from pipeline.core.files import display_path
from pipeline.core.records import Distance, HashedRecord, ImageRecord
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.groups import keeper_rank
from pipeline.dedup.run import DedupRequest, ThresholdChoice, resolve_threshold
from pipeline.dedup.threshold import Calibration
from pipeline.encoders.base import Encoder, encoder_version
from pipeline.index.embed import EmbedConfig, embed_paths
from pipeline.index.hashing import hash_file
from pipeline.index.sources import SourceListing, list_source
from pipeline.search.knn import blocked_topk
from pipeline.search.query import collection_vector
from pipeline.store import VectorSpec, VectorStore, point_id_for

NewStatus = Literal["exact", "near", "within_new", "unique", "indexed", "skipped", "failed"]
STATUSES: tuple[NewStatus, ...] = ("exact", "near", "within_new", "unique", "indexed", "skipped", "failed")
QUERY_PAGE = 512  # new vectors per store request
HASH_THREADS = 8  # hashing is I/O bound and hashlib releases the GIL
# auto: exact store search while new × indexed × dim stays under this; benchmarks/dedup_new.py measured 1,000 ×
# 100k × 64 in 2.9 s on 2 shared cores (and HNSW at ef 32 missing 1 of 250 planted near copies), so ≈ 7 s at most
AUTO_EXACT_MAX_WORK = 16 * 10**9
_SAME_BYTES_NEW = "same bytes as another new file"
_WITHIN = "similar to another new file that ranks before it as a keeper (more pixels, larger file, or path)"


@dataclass(frozen=True)
class NewFile:
    """What one listed entry of the new folder is.

    Attributes:
        path: the file as listed, made absolute (display form: odd bytes of a non-UTF-8 name escaped).
        status: see the module docstring.
        match_path: the file it duplicates: an indexed point's stored path (exact, near, indexed when that is
            another file) or another new file (within_new); "" otherwise.
        match_point_id: the indexed point it duplicates (exact, near, indexed); "" otherwise.
        score: similarity to the match (the score `query` prints; 1.0 for the same bytes); None without a match.
        reason: why, for exact, indexed, within_new, skipped and failed.
    """

    path: str
    status: NewStatus
    match_path: str = ""
    match_point_id: str = ""
    score: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class NewRequest:
    """What `dedup --new` was asked for.

    Attributes:
        collection: the indexed collection to check against (never written to).
        source: the folder of new images (or a .csv/.parquet manifest, as ingest reads it).
        out: where new-duplicates.csv/.parquet and summary.json go.
        choice: a fixed threshold, or a precision calibrated on labelled pairs (as `dedup`).
        graph: k neighbours per new image; how the store is searched (`method`: exact, ann = the HNSW index with
            beam `ef`, auto = `choose_search`); the block size of the exact top-k among the new images.
            `recall_sample` does not apply (no graph is built).
        encoder: which of the collection's vectors (None: its only one).
        embed: batching and decode workers for embedding the new images.
    """

    collection: str
    source: Path
    out: Path
    choice: ThresholdChoice
    graph: GraphOptions = field(default_factory=GraphOptions)
    encoder: str | None = None
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.graph.recall_sample:
            raise LookalikeError(
                "a recall sample measures a whole collection's k-NN graph; checking new files builds none",
                setting="recall_sample",
            )


@dataclass(frozen=True)
class Timings:
    """Seconds per step of a check: listing + hashing + id lookups, embedding, store and within-new search."""

    hashing: float
    embedding: float
    search: float
    total: float


@dataclass(frozen=True)
class NewCheck:
    """A finished check: one `NewFile` per listed entry, sorted by path, and what was written."""

    request: NewRequest
    files: tuple[NewFile, ...]
    threshold: float
    method: DedupMethod
    calibration: Calibration | None
    encoder: str
    spec: VectorSpec
    seconds: Timings
    report_csv: Path
    report_parquet: Path
    summary: Path

    def counts(self) -> dict[str, int]:
        """Files per status, every status present (0 when none)."""
        found = Counter(f.status for f in self.files)
        return {s: found[s] for s in STATUSES}


@dataclass(frozen=True)
class _Embedded:
    """The new files embedded for the near tier: row i is `paths[i]`, `vectors[i]` (M, D), keeper `ranks[i]`."""

    paths: tuple[str, ...]
    vectors: np.ndarray
    ranks: tuple[tuple[int, int, int, int, str], ...]


def check_new(
    store: VectorStore, request: NewRequest, device: torch.device, make_encoder: Callable[[str], Encoder]
) -> NewCheck:
    """Find which files of `request.source` duplicate indexed images of `request.collection`, or each other; write
    paths for new-duplicates.csv/.parquet and summary.json in `request.out` (`output.write_new_outputs` writes them).
    The store is only read.

    Args:
        store: the store holding the collection.
        request: what to check, and how.
        device: where the exact top-k among the new images runs (and the encoder, as `make_encoder` builds it).
        make_encoder: builds the collection's encoder from its recorded spec; called once, only if some file needs
            embedding (or calibration pairs do).

    Returns:
        The check, every listed entry accounted for.

    Raises:
        LookalikeError: no such collection, a multivector one, no such encoder in it, bad threshold options.
        SourceError: the source does not exist or cannot be listed.
        EncoderVersionError: the encoder's version differs from the one that filled the collection.
    """
    start = time.perf_counter()
    spec, encoder_spec = collection_vector(store, request.collection, request.encoder)
    if spec.multivector:
        raise LookalikeError(f"{spec.name} is a multivector (late interaction): dedup compares single vectors")
    encoder = _once(store, request.collection, spec, lambda: make_encoder(encoder_spec))
    threshold_request = DedupRequest(request.collection, request.out, request.choice, encoder=request.encoder)
    threshold, calibration = resolve_threshold(store, threshold_request, spec, encoder)
    listing = list_source(request.source)
    hashed, unreadable = hash_files(listing.records, request.progress)
    files = _listing_files(listing) + unreadable
    exact, todo = _exact_tier(store, request.collection, hashed)
    hashing = time.perf_counter()
    embedded, failed = _embed(todo, spec, encoder, device, request)
    embedding = time.perf_counter()
    method = choose_search(request.graph, len(embedded.paths), store.count(request.collection), spec.dim)
    files += exact + failed + _near_tier(store, request, spec, embedded, (threshold, method), device)
    searching = time.perf_counter()
    seconds = Timings(hashing - start, embedding - hashing, searching - embedding, searching - start)
    rows = tuple(sorted(files, key=lambda f: f.path))
    out = request.out
    written = (out / "new-duplicates.csv", out / "new-duplicates.parquet", out / "summary.json")
    return NewCheck(request, rows, threshold, method, calibration, encoder_spec, spec, seconds, *written)


def _once(store: VectorStore, collection: str, spec: VectorSpec, build: Callable[[], Encoder]) -> Callable[[], Encoder]:
    """`build`, called at most once, its encoder checked against the version that filled the collection."""
    built: list[Encoder] = []

    def get() -> Encoder:
        if not built:
            encoder = build()
            store.check_encoder_version(collection, spec.name, encoder.name, encoder_version(encoder))
            built.append(encoder)
        return built[0]

    return get


def _shown(path: str) -> str:
    """The path made absolute (not resolved: two symlinks to one file stay two entries), in display form."""
    return display_path(os.path.abspath(path))


def _listing_files(listing: SourceListing) -> list[NewFile]:
    """The entries the source itself skipped (not image names) or could not list (folders, empty manifest rows)."""
    skipped = [NewFile(_shown(r.path), "skipped", reason=r.reason) for r in listing.skipped]
    return skipped + [NewFile(_shown(r.path), "failed", reason=r.reason) for r in listing.failed]


def hash_files(records: Sequence[ImageRecord], progress: bool = False) -> tuple[list[HashedRecord], list[NewFile]]:
    """Hash every file (threads), as ingest does: the records in order, and a failed `NewFile` for each that cannot
    be read as a regular non-empty file (FIFO, folder, broken or looping symlink, read error)."""
    hashed: list[HashedRecord] = []
    failed: list[NewFile] = []
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        results = zip(records, pool.map(_hash_one, records), strict=True)
        for record, result in tqdm(results, total=len(records), desc="hashing new", unit="img", disable=not progress):
            if isinstance(result, str):
                failed.append(NewFile(_shown(record.path), "failed", reason=result))
            else:
                hashed.append(result)
    return hashed, failed


def _hash_one(record: ImageRecord) -> HashedRecord | str:
    """The hashed record, or why the file cannot be read (ingest's own stage and reasons: `index.hashing`)."""
    found = hash_file(record.path)
    return HashedRecord(record, found.sha256, point_id_for(found.sha256)) if found.sha256 else found.reason


def _exact_tier(
    store: VectorStore, collection: str, hashed: Sequence[HashedRecord]
) -> tuple[list[NewFile], list[HashedRecord]]:
    """Files whose bytes are indexed (exact, or indexed when the file itself is) and byte copies among the new files
    (within_new, of the first listed); the rest, one file per content, go on to the near tier.

    Returns:
        The files decided here, and the new contents to embed (in listing order).
    """
    stored = store.payloads(collection, list(dict.fromkeys(h.point_id for h in hashed)), ("path", "duplicate_paths"))
    files: list[NewFile] = []
    first: dict[str, str] = {}  # point id of a content not indexed → the first new file with it
    todo: list[HashedRecord] = []
    for h in hashed:
        path = _shown(h.record.path)
        if h.point_id in stored:
            files.append(_indexed_match(h, path, stored[h.point_id]))
        elif h.point_id in first:
            files.append(NewFile(path, "within_new", first[h.point_id], "", 1.0, _SAME_BYTES_NEW))
        else:
            first[h.point_id] = path
            todo.append(h)
    return files, todo


def _indexed_match(h: HashedRecord, path: str, payload: Mapping[str, object]) -> NewFile:
    """An exact copy of an indexed point, or the point's own file (ingest records resolved paths)."""
    primary = str(payload.get("path") or "")
    others = payload.get("duplicate_paths") or []
    recorded = {primary, *(others if isinstance(others, list) else [])}
    resolved = display_path(str(Path(h.record.path).resolve()))
    if resolved in recorded:
        reason = "already in the collection; `lookalike dedup -c NAME` groups it with its duplicates"
        return NewFile(path, "indexed", primary if primary != resolved else "", h.point_id, None, reason)
    return NewFile(path, "exact", primary, h.point_id, 1.0, "same bytes as an indexed file")


def _embed(
    todo: Sequence[HashedRecord],
    spec: VectorSpec,
    encoder: Callable[[], Encoder],
    device: torch.device,
    request: NewRequest,
) -> tuple[_Embedded, list[NewFile]]:
    """Embed one file per new content; a file that cannot be decoded or embedded fails with the reason."""
    paths: list[str] = []
    vectors: list[np.ndarray] = []
    ranks: list[tuple[int, int, int, int, str]] = []
    failed: list[NewFile] = []
    if todo:
        bar = tqdm(total=len(todo), desc="embedding new", unit="img", disable=not request.progress)
        with bar:
            for items in embed_paths([h.record.path for h in todo], encoder(), device, request.embed):
                for item in items:
                    path = _shown(todo[item.index].record.path)
                    if item.vector is None:
                        reason = item.reason if item.status == "failed" else f"not embedded: {item.reason}"
                        failed.append(NewFile(path, "failed", reason=reason))
                        continue
                    paths.append(path)
                    vectors.append(np.asarray(item.vector, dtype=np.float32))
                    ranks.append(keeper_rank(item.width * item.height, _size(path), True, path))
                bar.update(len(items))
    matrix = np.stack(vectors) if vectors else np.zeros((0, spec.dim), dtype=np.float32)  # (M, D)
    return _Embedded(tuple(paths), matrix, tuple(ranks)), failed


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def choose_search(graph: GraphOptions, new: int, indexed: int, dim: int) -> DedupMethod:
    """How the store is searched for the new vectors: `graph.method` when it is exact or ann; for auto, exact while
    new × indexed × dim ≤ `AUTO_EXACT_MAX_WORK` (every duplicate is then found, in seconds), else the HNSW index
    (time ∝ new × log indexed; a duplicate may be missed: a larger beam `ef` finds more).

    Raises:
        LookalikeError: method ivf, which builds a graph over the whole collection rather than searching it.
    """
    if graph.method == DedupMethod.IVF:
        raise LookalikeError(
            "--new searches the indexed collection for the new images; ivf builds a graph over the whole "
            "collection: use --method auto, exact or ann",
            setting="method",
        )
    if graph.method != DedupMethod.AUTO:
        return graph.method
    return DedupMethod.EXACT if new * indexed * dim <= AUTO_EXACT_MAX_WORK else DedupMethod.ANN


def _near_tier(
    store: VectorStore,
    request: NewRequest,
    spec: VectorSpec,
    embedded: _Embedded,
    how: tuple[float, DedupMethod],
    device: torch.device,
) -> list[NewFile]:
    """near (an indexed point ≥ threshold among the k nearest), else within_new (a better-ranked new file ≥
    threshold), else unique; `how` is the threshold and the store search method."""
    threshold, method = how
    graph = dataclasses.replace(request.graph, method=method)
    indexed = nearest_indexed(store, request.collection, spec, embedded.vectors, graph, threshold)
    stored = store.payloads(request.collection, list({hit[0] for hit in indexed if hit}), ("path",))
    within = nearest_earlier(embedded.vectors, embedded.ranks, spec.distance, request.graph, threshold, device)
    files = []
    for i, path in enumerate(embedded.paths):
        if (hit := indexed[i]) is not None:
            files.append(NewFile(path, "near", str(stored.get(hit[0], {}).get("path", "")), hit[0], hit[1]))
        elif (other := within[i]) is not None:
            files.append(NewFile(path, "within_new", embedded.paths[other[0]], "", other[1], _WITHIN))
        else:
            files.append(NewFile(path, "unique"))
    return files


def nearest_indexed(
    store: VectorStore, collection: str, spec: VectorSpec, vectors: np.ndarray, graph: GraphOptions, threshold: float
) -> list[tuple[str, float] | None]:
    """For each row of (M, D) `vectors`, the best indexed (point id, score) if it is at least `threshold`.

    One batched query per `QUERY_PAGE` rows, top `graph.k` each: scoring every point with `graph.method` exact,
    else through the HNSW index with beam `graph.ef`.
    """
    exact = graph.method == DedupMethod.EXACT
    best: list[tuple[str, float] | None] = []
    for start in range(0, len(vectors), QUERY_PAGE):
        rows = store.nearest(collection, spec, vectors[start : start + QUERY_PAGE], graph.k, exact=exact, ef=graph.ef)
        best += [row[0] if row and row[0][1] >= threshold else None for row in rows]
    return best


def nearest_earlier(
    vectors: np.ndarray,
    ranks: Sequence[tuple[int, int, int, int, str]],
    distance: Distance,
    graph: GraphOptions,
    threshold: float,
    device: torch.device,
) -> list[tuple[int, float] | None]:
    """For each row of (M, D) `vectors`, its most similar row that ranks before it (lower `ranks`) among its exact
    top `graph.k`, as (row, score), if the score is at least `threshold`: the first file of a near pair is never
    flagged, so nothing is lost if every flagged file is removed."""
    if len(vectors) < 2:
        return [None] * len(vectors)
    knn = blocked_topk(vectors, graph.k, distance, graph.block_size, device)  # (M, k), best first
    found: list[tuple[int, float] | None] = []
    for i in range(len(vectors)):
        pairs = zip(knn.indices[i].tolist(), knn.scores[i].tolist(), strict=True)
        earlier = (
            (j, score) for j, score in pairs if j >= 0 and score >= threshold and ranks[j] < ranks[i]
        )  # best first
        found.append(next(earlier, None))
    return found
