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

Here: the check (`check_new`) and its result (`NewCheck`); the records in `new_records`, the listing, hashing and
exact tier in `new_exact`, the embedding, store search and within-new search in `new_near`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.core.errors import LookalikeError
from pipeline.dedup.graph import DedupMethod
from pipeline.dedup.new_exact import exact_tier, hash_files, listing_files
from pipeline.dedup.new_near import choose_search, embed_new, near_tier
from pipeline.dedup.new_records import STATUSES, NewFile, NewRequest
from pipeline.dedup.run import DedupRequest, resolve_threshold
from pipeline.dedup.threshold import Calibration
from pipeline.encoders.base import Encoder, encoder_version
from pipeline.index.sources import list_source
from pipeline.search.query import collection_vector
from pipeline.store import VectorSpec, VectorStore


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
    files = listing_files(listing) + unreadable
    exact, todo = exact_tier(store, request.collection, hashed)
    hashing = time.perf_counter()
    embedded, failed = embed_new(todo, spec, encoder, device, request)
    embedding = time.perf_counter()
    method = choose_search(request.graph, len(embedded.paths), store.count(request.collection), spec.dim)
    files += exact + failed + near_tier(store, request, spec, embedded, (threshold, method), device)
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
