"""Reading a file's content hash, the first stage of every ingest; light to import (no store, no torch), as Ray
workers import it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.core.errors import ImageDecodeError
from pipeline.core.files import sha256_stream
from pipeline.core.images import open_regular_file


@dataclass(frozen=True)
class FileHash:
    """What reading one file gave: its sha256, or why it could not be read (exactly one is non-empty)."""

    sha256: str = ""
    reason: str = ""


def hash_file(path: str) -> FileHash:
    """Hash a regular file; anything else (FIFO, folder, broken or looping symlink) fails without being read."""
    try:
        with open_regular_file(path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return FileHash(reason="empty file (0 bytes)")
            return FileHash(sha256_stream(fh))
    except ImageDecodeError as e:
        return FileHash(reason=str(e))
    except OSError as e:  # a read error after opening
        return FileHash(reason=f"unreadable: {e.strerror or e}")
