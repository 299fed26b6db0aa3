"""lookalike's own exclusive lock on an embedded store folder, taken before the engine opens anything in it.

Why our own lock: the engine's WAL lock is taken only once a shard is loading, and a second process's failed load
can damage a running writer's shard (qdrant-edge 0.9.0: 21 of 46 trials, measured when issue 15 was filed). An
`flock` on a file of ours is taken first and refuses the second process before it touches a shard. The kernel
drops an `flock` when its holder dies (kill -9 included), so no stale lock survives a crash; forked children
(DataLoader workers) close their inherited copy at once, so a worker orphaned by a killed parent does not keep the
store locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from pipeline.core.errors import StoreError

LOCK_NAME = "lookalike.lock"
_HELD: set[int] = set()  # fds of the locks this process holds, closed (not unlocked) in forked children


def _forget_in_child() -> None:
    """In a forked child: close the inherited lock fds. Closing a copy never unlocks: the parent keeps the lock,
    and once the parent is gone nothing holds it."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class StoreLock:
    """An exclusive, non-blocking `flock` on `<folder>/lookalike.lock`, holding the owner's pid for messages."""

    def __init__(self, folder: Path) -> None:
        """Take the lock.

        Raises:
            StoreError: another process holds it (the message names it and the ways out), or the folder cannot
                be written.
        """
        self.path = folder / LOCK_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open the embedded store {folder}: {e.strerror or e}") from e
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = self._owner()
            os.close(self._fd)
            self._fd = None
            raise StoreError(
                f"embedded store {folder} is in use by another lookalike process{owner}; wait for it, use another "
                "store folder, or run a Qdrant server (docker compose up -d) and give its URL",
                setting="qdrant_url",
            ) from e
        _HELD.add(self._fd)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _owner(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is None:
            return
        _HELD.discard(self._fd)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
