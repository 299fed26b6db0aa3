"""Names and policies every entry point shares, defined once: where ingest reports go, what a collection is called
when the user names none, what a no-face policy means for re-runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

DEFAULT_REPORT_DIR = Path(".lookalike/reports")


def vector_name(encoder_name: str) -> str:
    """The Qdrant named-vector key for an encoder: its spec with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", encoder_name).strip("-")


def ingest_report_path(collection: str, report_dir: Path = DEFAULT_REPORT_DIR) -> Path:
    """The CSV of inputs an ingest into `collection` did not ingest, with reasons."""
    return report_dir / f"{collection}-ingest.csv"


def default_collection(dataset: str, encoder_names: Sequence[str]) -> str:
    """`<dataset>-<vector>[-<vector>…]`: the collection eval, submit and finetune use when given none."""
    return "-".join([dataset, *(vector_name(name) for name in encoder_names)])


def retries_missing(no_face: str) -> bool:
    """Whether images stored without a vector (no face found earlier) are embedded again: with `--no-face center`,
    which gives every image a vector."""
    return no_face == "center"
