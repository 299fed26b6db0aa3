"""What a server is set up with, built once at the CLI edge (or by a test)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import LookalikeError

DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class ServeSettings:
    """How the app behaves; the store and the encoder factory are injected separately (`create_app`).

    Attributes:
        collection: the collection shown first (None: the store's first).
        runs: the runs folder: dedup runs are read from `runs/dedup/<collection>`, eval reports from `runs/eval`.
        token: when set, every request needs it (`Authorization: Bearer …`, or the cookie `/?token=…` sets).
        max_upload_bytes: larger request bodies are refused with 413 before they are read.
        device: where "compute now" builds the dedup k-NN graph ("cpu", "cuda:0").
        move_to: where applied moves put non-keepers; None = `runs/dedup/<collection>/moved`.
        dedup_dirs: collection → dedup output folder to review instead of `runs/dedup/<collection>`.
        signing_key: the key file that signs move manifests (None: `pipeline.core.config.signing_key_path()`).
        allowed_hosts: when not empty, requests whose Host header names another host are refused (a page on another
            site cannot reach a server bound to the loopback through DNS rebinding).
        page_size: duplicate groups per page.
        max_k: the most results one search may ask for.
        thumb_cache: thumbnails kept in memory (least recently used dropped first).
        encoder_cache: encoders kept loaded (one per encoder spec in use).
    """

    collection: str | None = None
    runs: Path = Path("runs")
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    device: str = "cpu"
    move_to: Path | None = None
    dedup_dirs: Mapping[str, Path] = field(default_factory=dict)
    signing_key: Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    page_size: int = 50
    max_k: int = 200
    thumb_cache: int = 1024
    encoder_cache: int = 2

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise LookalikeError(f"upload cap {self.max_upload_bytes} bytes: must be at least 1", "max_upload_bytes")
        if self.token is not None and not self.token.strip():
            raise LookalikeError("an empty token would let anyone in: give a real one, or none", setting="token")
        if min(self.page_size, self.max_k, self.thumb_cache, self.encoder_cache) < 1:
            raise LookalikeError("page size, max k and the cache sizes must each be at least 1")

    def dedup_dir(self, collection: str) -> Path:
        """The dedup output folder reviewed (and written by "compute now") for `collection`."""
        return self.dedup_dirs.get(collection) or self.runs / "dedup" / collection

    def move_dir(self, collection: str) -> Path:
        """Where applied moves put the non-keepers of `collection`."""
        return self.move_to or self.dedup_dir(collection) / "moved"

    @property
    def eval_dir(self) -> Path:
        return self.runs / "eval"


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
