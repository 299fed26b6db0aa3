"""Signatures for files lookalike writes and later acts on (move manifests).

`dedup --undo` moves files named in a manifest, so it must act only on manifests lookalike itself wrote: each one
is signed with an HMAC-SHA256 of its exact bytes, under a secret key kept in the user's config folder (created on
first use, mode 0600). A hand-written or edited manifest has no valid signature and is refused before anything
moves. The signature sits next to the file, as `<file>.sig`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import LookalikeError
from pipeline.core.files import write_bytes_atomic

KEY_BYTES = 32
_PREFIX = "hmac-sha256:"


@dataclass(frozen=True)
class SigningKey:
    """A secret HMAC key; `path` only names it in messages."""

    secret: bytes
    path: Path

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """The key at `path`, created (32 random bytes, mode 0600) when it does not exist yet.

        Raises:
            LookalikeError: the key file cannot be read or created, or is not a key.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create(path)
            secret = path.read_bytes()
        except OSError as e:
            raise LookalikeError(f"{path}: cannot read or create the signing key: {e.strerror or e}") from None
        if len(secret) != KEY_BYTES:
            raise LookalikeError(
                f"{path}: not a lookalike signing key ({len(secret)} bytes, expected {KEY_BYTES}); "
                "manifests signed with the old key can no longer be undone by lookalike"
            )
        return cls(secret, path)

    def sign(self, data: bytes) -> str:
        return _PREFIX + hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature.strip())


def _create(path: Path) -> None:
    """Write a new random key with O_EXCL, so two processes racing to create it end up with the same one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def write_signed(path: Path, data: bytes, key: SigningKey) -> None:
    """Write `data` to `path` and its signature to `<path>.sig`, each atomically (temp file, fsync, rename)."""
    write_bytes_atomic(path, data)
    write_bytes_atomic(signature_path(path), (key.sign(data) + "\n").encode())


def read_signed(path: Path, key: SigningKey) -> bytes:
    """The bytes of `path`, if `key` signed exactly them.

    Raises:
        LookalikeError: the file or its signature is missing, or the signature does not match.
    """
    sig = signature_path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LookalikeError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        signature = sig.read_text(encoding="ascii", errors="replace")
    except OSError:
        signature = ""
    if not signature or not key.verify(data, signature):
        state = "does not match its contents" if signature else f"is missing ({sig.name})"
        raise LookalikeError(
            f"{path}: refused: its signature {state}, so lookalike did not write it as it is "
            f"(key {key.path}); nothing was moved"
        )
    return data
