"""Ingest: source listing → content hashes → skip what is stored → embed → batched writes → summary.

A collection may hold several encoders' vectors (one named vector each): `ingest_all` hashes each file once, then
each encoder's pass adds its vectors to the points without touching the others'. The source is read in rounds of
`ROUND_FILES` files, each hashed, embedded and written before the next is read, so a large folder is never held
whole: what grows with the source is a point id and a path per distinct content (to find duplicates), the problems
(the report's rows), and, where asked for, each input's point id.

Byte-identical files share one point (its id is the content hash). The point's payload `path` is the first file
ingested with that content; every other file with the same bytes, from this run or any earlier one, is kept in its
payload list `duplicate_paths`, which is what `dedup`'s exact tier reads.

Every entry of the listing ends in exactly one outcome: the source's own failures (folders it could not list,
manifest rows without a path) and skips come first, then files that cannot be read as regular files (FIFOs, broken
or looping symlinks) fail at hashing without blocking, and the rest are embedded or fail at decoding with a reason.

Where the heavy stages run is an `Execution`: `LocalExecution` (a thread pool hashes, DataLoader workers decode, this
process encodes) or the Ray Data pipeline of `pipeline.index.distributed`. Everything else (the rounds, the resume
check, duplicates, points, writes, the accounting and the report) is `run_ingest`'s, with each round's steps
(`pipeline.index.rounds`) and the stages of `pipeline.index.stages`: the same for both.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from tqdm import tqdm

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import vector_name
from pipeline.core.errors import LookalikeError
from pipeline.core.records import ImageRecord, IngestOutcome, IngestSummary
from pipeline.encoders.base import Encoder, encoder_version, is_multivector
from pipeline.index.embed import EmbedConfig, embed_paths
from pipeline.index.hashing import FileHash, hash_file
from pipeline.index.prepared import EmbeddedItem
from pipeline.index.rounds import EncoderPass, Execution, Hashing
from pipeline.index.sources import SourceListing, SourceStream
from pipeline.index.stages import write_report
from pipeline.store import VectorSpec, VectorStore

ROUND_FILES = 8192  # files hashed, checked against the store and embedded before the next are read


def encoder_vector_spec(encoder: Encoder) -> VectorSpec:
    """The named vector an encoder writes into a collection."""
    return VectorSpec(vector_name(encoder.name), encoder.dim, encoder.distance, is_multivector(encoder))


@dataclass(frozen=True)
class LocalExecution:
    """This process: hashing on a thread pool (I/O bound; hashlib releases the GIL), decoding and `prepare` in
    DataLoader worker processes, encoding here on `device`, batches in order."""

    pool: Executor
    device: torch.device
    embed_config: EmbedConfig

    @property
    def round_files(self) -> int:
        return ROUND_FILES  # read when used, so a test can make rounds small

    def hash(self, records: Sequence[ImageRecord]) -> Iterable[FileHash]:
        return self.pool.map(hash_file, [r.path for r in records])

    def embed(self, paths: Sequence[str], encoder: Encoder) -> Iterable[list[EmbeddedItem]]:
        return embed_paths(paths, encoder, self.device, self.embed_config)


def ingest(
    listing: SourceListing | SourceStream,
    encoder: Encoder,
    store: VectorStore,
    config: IngestConfig,
    device: torch.device,
) -> IngestSummary:
    """Embed and store every new image of a source with one encoder; idempotent and resumable.

    Points are keyed by content hash, so images already stored (with this encoder's vector, or recorded
    as having no face) are not embedded again, and each batch is written as soon as it is embedded.
    The collection may hold other encoders' vectors too; they are kept.
    """
    return ingest_all(listing, (encoder,), store, config, device)[0]


def ingest_all(
    listing: SourceListing | SourceStream,
    encoders: Sequence[Encoder],
    store: VectorStore,
    config: IngestConfig,
    device: torch.device,
    *,
    point_ids: bool = True,
) -> tuple[IngestSummary, ...]:
    """Embed every new image of a source with each encoder, into one collection with a named vector per encoder.

    A new collection is made with all the encoders' vectors; an existing one must already hold each of them.
    The source is read in rounds of `ROUND_FILES` files: each round's files are hashed once, then each encoder
    embeds and writes what it has not stored yet, before the next round is read; so memory does not grow with
    the source (a `SourceStream` is never held whole), but for a point id and a path per distinct content, the
    problems, and (with `point_ids`) each input's point id.

    Byte-identical files share one point: a file whose content is stored already (this run or an earlier one) at
    another path is added to that point's `duplicate_paths`, in one batched payload update per round; the point's
    `path` stays the first file ingested.

    Args:
        point_ids: fill each summary's `point_ids` (path → point id of every input read); off where only the
            counts and problems are wanted, e.g. a large folder from the command line.

    Returns:
        One summary per encoder, in order; each accounts for every input (the listing's failures and skips,
        unreadable files and duplicates appear in all of them). `seconds` is the hashing time plus that encoder's
        passes.

    Raises:
        LookalikeError: no encoder, or two encoders that write the same named vector.
        StoreError: the collection exists and lacks one of the encoders' vectors.
        EncoderVersionError: the collection was made with another version of one of the encoders.
    """
    with ThreadPoolExecutor(max_workers=max(1, config.hash_threads)) as pool:
        execution = LocalExecution(pool, device, EmbedConfig(config.batch_size, config.workers, config.max_pixels))
        return run_ingest(listing, encoders, store, config, execution, point_ids=point_ids)


def run_ingest(
    listing: SourceListing | SourceStream,
    encoders: Sequence[Encoder],
    store: VectorStore,
    config: IngestConfig,
    execution: Execution,
    *,
    point_ids: bool = True,
) -> tuple[IngestSummary, ...]:
    """`ingest_all` with its hashing and embedding run by `execution`: the one runner of every ingest.

    Each round (`execution.round_files` files) is hashed, its duplicates grouped and its contents checked against
    the store (in batches, before any file is decoded); then each encoder embeds what it has not stored yet and
    every batch is written as it arrives. Outcomes are accounted in input order whatever order batches arrive in.

    Raises:
        As `ingest_all`; LookalikeError when `execution` did not give back exactly one result per file to embed.
    """
    start = time.perf_counter()
    _ensure_collection(store, config.collection, encoders)
    with ExitStack() as stack:
        hashing = Hashing(stack.enter_context(_bar("hashing", listing.total, 0, config.progress)))
        passes = [
            EncoderPass(
                encoder, point_ids, stack.enter_context(_bar(f"embedding ({encoder.name})", 0, i, config.progress))
            )
            for i, encoder in enumerate(encoders, start=1)
        ]
        hashing.seconds = time.perf_counter() - start
        for records in _rounds(listing.records, execution.round_files):
            unique, paths = hashing.run(records, execution, store, config.collection)
            for one in passes:
                one.run(unique, paths, store, config, execution)
    shared = [
        *(IngestOutcome(r.path, "failed", r.reason) for r in listing.failed),  # folders not listed, empty rows
        *hashing.unreadable,
        *hashing.duplicates,
        *(IngestOutcome(r.path, "skipped", r.reason) for r in listing.skipped),
    ]
    summaries = tuple(one.tally.summary(shared, hashing.seconds + one.seconds) for one in passes)
    store.build_index(config.collection)  # HNSW once large enough (embedded engine); a server indexes on its own
    store.flush()
    problems = tuple(dict.fromkeys(o for s in summaries for o in s.problems))  # shared problems once
    if config.report_path is not None and problems:
        write_report(problems, config.report_path)
    return summaries


def _ensure_collection(store: VectorStore, collection: str, encoders: Sequence[Encoder]) -> None:
    """Raises LookalikeError (no encoder, or two writing one named vector), StoreError, EncoderVersionError."""
    specs = [encoder_vector_spec(e) for e in encoders]
    names = [s.name for s in specs]
    if not specs or len(set(names)) != len(names):
        raise LookalikeError(f"ingest needs distinct encoders, got: {', '.join(e.name for e in encoders) or 'none'}")
    store.ensure_collection(
        collection,
        specs,
        {s.name: e.name for s, e in zip(specs, encoders, strict=True)},
        {s.name: encoder_version(e) for s, e in zip(specs, encoders, strict=True)},
    )


def _rounds(records: Iterable[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _bar(desc: str, total: int, position: int, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not progress, position=position)


def combine_summaries(summaries: Sequence[IngestSummary]) -> IngestSummary:
    """Counts summed over several passes (e.g. one per encoder), point ids and problems merged."""
    keys = ("seen", "ingested", "already_present", "duplicate_content", "no_face", "failed", "skipped", "seconds")
    totals = {k: sum(getattr(s, k) for s in summaries) for k in keys}
    ids = {path: pid for s in summaries for path, pid in s.point_ids.items()}
    problems = tuple(dict.fromkeys(o for s in summaries for o in s.problems))
    encoder = ",".join(s.encoder for s in summaries)
    return IngestSummary(**totals, problems=problems, point_ids=ids, encoder=encoder)
