"""Helpers the benchmark scripts share (they run as `python benchmarks/<script>.py`, so this folder is on sys.path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def lookalike_command() -> str:
    """The `lookalike` entry point of the running interpreter's environment, else the one on PATH.

    Raises:
        SystemExit: neither exists (the project is not installed).
    """
    beside = Path(sys.executable).parent / "lookalike"
    found = str(beside) if beside.exists() else shutil.which("lookalike")
    if found is None:
        raise SystemExit("no `lookalike` command next to this Python or on PATH; install the project first")
    return found
