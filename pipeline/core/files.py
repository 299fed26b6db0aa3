"""Careful file operations for users' files and lookalike's own: content hashes, atomic writes, verified moves.

A move of a user's file happens only if the file still hashes to the content it is expected to have, checked at the
moment of acting, and never replaces anything: on one filesystem a hard link then an unlink (the link fails if the
destination exists), across filesystems a verified copy then the unlink.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from pipeline.core.errors import LookalikeError, UnreadableFileError, first_line


class MoveRefused(LookalikeError):
    """A move that was not made; the message is the reason (e.g. content changed, destination exists)."""


# Non-blocking, so that a FIFO swapped in after the type check still cannot make open() wait for a writer
# (regular files ignore O_NONBLOCK). Windows has neither FIFOs nor the flag.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return sha256_stream(fh, chunk)


def sha256_stream(fh: BinaryIO, chunk: int = 1 << 20) -> str:
    """Hex sha256 of what is left to read in an open binary file."""
    digest = hashlib.sha256()
    while block := fh.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True for a regular file (after following symlinks); False for missing, folders, FIFOs, devices."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for binary reading if it is a regular file (symlinks followed), without ever blocking.

    A FIFO, socket, device or folder is refused before a byte is read (opening a FIFO waits for a writer forever);
    the type is checked with stat before opening and again with fstat on the open descriptor.

    Raises:
        UnreadableFileError: the path is missing, a broken symlink, a symlink loop, unreadable, invalid (a NUL
            character) or not a regular file; the message is one line naming the reason (without the path).
    """
    try:
        _require_regular_file(os.stat(path).st_mode)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise UnreadableFileError(_open_failure(path, e)) from e
    except ValueError as e:  # "embedded null byte"
        raise UnreadableFileError(f"invalid path: {e}") from e
    try:
        _require_regular_file(os.fstat(fd).st_mode)
    except UnreadableFileError:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _require_regular_file(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
        raise UnreadableFileError(f"not a regular file: {kind}")


def _open_failure(path: str | os.PathLike[str], error: OSError) -> str:
    """One-line reason a path could not be opened."""
    if error.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if error.errno == errno.ENOENT and os.path.islink(path):
        return "broken symbolic link (its target does not exist)"
    return f"unreadable: {error.strerror or error}"


def has_content(path: str | os.PathLike[str], sha256: str) -> bool:
    """True when `path` is a regular file whose bytes hash to `sha256` (False when unreadable)."""
    if not sha256 or not is_regular_file(path):
        return False
    try:
        return sha256_file(path) == sha256
    except OSError:
        return False


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write so that a crash leaves either the old file or the new one, never a torn one (temp + fsync + rename +
    fsync of the folder)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def read_table(
    path: Path, what: str, error: type[LookalikeError] = LookalikeError, *, setting: str | None = None, **options: Any
) -> pl.DataFrame:
    """A CSV (or Parquet, by suffix) as a frame, or one line saying why not.

    polars' own messages span lines and suggest its options (`truncate_ragged_lines=True`), which a user of the
    command line cannot pass: only their first line is kept, with what to fix in the file.

    Raises:
        `error`: the file cannot be read or parsed (named, with `what` it is; its `setting` is `setting`, the
            setting that named the file, if one did).
    """
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path, **options)
        return pl.read_csv(path, **options)
    except OSError as e:
        raise error(f"{path}: cannot read {what}: {e.strerror or e}", setting=setting) from None
    except (pl.exceptions.PolarsError, ValueError) as e:
        first = first_line(e)
        hint = " (every row needs as many fields as the header)" if "fields" in first else ""
        raise error(f"{path}: cannot read {what}: {first}{hint}", setting=setting) from None


def display_path(path: str) -> str:
    """`path` as valid Unicode text, for store payloads and reports.

    A name that is valid UTF-8 comes back unchanged. Python hands each byte of a file name that is not UTF-8 over as
    a lone surrogate ("surrogateescape": b"bad\\xff.jpg" is "bad\\udcff.jpg"), which neither JSON payloads nor a
    UTF-8 report can hold; each such byte is written as the four characters `\\xNN` instead (Python's
    "backslashreplace" of the raw bytes). That form is for people: it does not open the file.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to (e.g. "\ud800"): escape it as a code point
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


def verified_move(src: Path, dst: Path, sha256: str) -> None:
    """Move `src` to `dst` if `src` hashes to `sha256` now and `dst` does not exist; create `dst`'s folders.

    Raises:
        MoveRefused: `src` is gone or not a regular file, its content differs, or `dst` exists.
        OSError: the filesystem failed (full disk, permissions); `src` is then left in place.
    """
    if not is_regular_file(src):
        raise MoveRefused("file no longer exists" if not os.path.lexists(src) else "not a regular file")
    if os.path.lexists(dst):
        raise MoveRefused("destination exists")
    if not sha256:
        raise MoveRefused("no sha256 recorded to check its content against")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # never replaces: fails if dst exists
    except FileExistsError:
        raise MoveRefused("destination exists") from None
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        _copy_verified(src, dst, sha256)
    else:
        _check_linked(src, dst, sha256)
    os.unlink(src)
    fsync_dir(dst.parent)


def _check_linked(src: Path, dst: Path, sha256: str) -> None:
    """`dst` is a new hard link to `src`: hash it (the same bytes, read once) and undo the link if they differ."""
    try:
        same = sha256_file(dst) == sha256 and os.path.samefile(src, dst)
    except OSError:
        same = False
    if not same:
        dst.unlink()
        raise MoveRefused("content changed since ingest (sha256 differs)")


def _copy_verified(src: Path, dst: Path, sha256: str) -> None:
    """Copy to a temporary name beside `dst`, check the copy's hash, then give it its name (never replacing)."""
    partial = dst.with_name(f".{dst.name}.lookalike-partial")
    try:
        shutil.copy2(src, partial)
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        if sha256_file(partial) != sha256:
            raise MoveRefused("content changed while it was being copied")
        if os.path.lexists(dst):
            raise MoveRefused("destination exists")
        os.rename(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    if sha256_file(src) != sha256:  # changed during the copy: keep the original, drop the copy
        dst.unlink()
        raise MoveRefused("content changed while it was being copied")
