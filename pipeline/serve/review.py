"""The review of a dedup run, kept beside it so that it survives paging and reloads: which groups are marked and
which keeper was chosen per group (`review.json` in the run folder, written atomically).

The review is keyed to the run (a hash of its summary.json and the groups file's size and modification time): a run
computed again starts with a clean review instead of inheriting marks meant for other groups.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import LookalikeError
from pipeline.core.files import write_bytes_atomic
from pipeline.serve.duplicates import KeeperChoice, read_groups

REVIEW_NAME = "review.json"


@dataclass(frozen=True)
class ReviewState:
    """The marks and keeper choices of one run (`run`: its key, see `run_key`)."""

    run: str
    marked: frozenset[int] = frozenset()
    keepers: Mapping[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        keepers = {str(g): path for g, path in sorted(self.keepers.items())}
        return {"run": self.run, "marked": sorted(self.marked), "keepers": keepers}


@dataclass(frozen=True)
class GroupReview:
    """What a request sets for one group: marked or not, and the keeper chosen (None: leave it as it is)."""

    group_id: int
    marked: bool
    keeper: str | None = None


def review_path(folder: Path) -> Path:
    return folder / REVIEW_NAME


def run_key(folder: Path) -> str:
    """The identity of the run in `folder`: the sha256 of its summary.json with the groups file's size and mtime."""
    digest = hashlib.sha256()
    try:
        digest.update((folder / "summary.json").read_bytes())
    except OSError:
        digest.update(b"no summary")
    stat = (folder / "groups.parquet").stat()
    digest.update(f"|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_review(folder: Path) -> ReviewState:
    """The review of the run in `folder`; an empty one when there is none yet, it is unreadable, or it was made for
    an earlier run in the same folder."""
    key = run_key(folder)
    try:
        saved = json.loads(review_path(folder).read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or saved.get("run") != key:
            return ReviewState(key)
        marked = frozenset(int(g) for g in saved.get("marked") or [])
        keepers = {int(g): str(p) for g, p in (saved.get("keepers") or {}).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return ReviewState(key)
    return ReviewState(key, marked, keepers)


def save_review(folder: Path, review: ReviewState) -> None:
    """Write the review beside the run (temp file + rename: a crash leaves the old review or the new one)."""
    data = json.dumps(review.to_json(), indent=1, ensure_ascii=False).encode()
    write_bytes_atomic(review_path(folder), data)


def updated(review: ReviewState, changes: Iterable[GroupReview]) -> ReviewState:
    """The review with the listed groups' marks and keepers set; other groups unchanged."""
    marked, keepers = set(review.marked), dict(review.keepers)
    for change in changes:
        (marked.add if change.marked else marked.discard)(change.group_id)
        if change.keeper is not None:
            keepers[change.group_id] = change.keeper
    return ReviewState(review.run, frozenset(marked), keepers)


def check_changes(folder: Path, changes: Iterable[GroupReview]) -> None:
    """Refuse changes naming a group the run does not hold, or a keeper that is not one of its group's files.

    Raises:
        LookalikeError: what is wrong, in one line.
    """
    listed = list(changes)
    groups = {g[0].group_id: {m.path for m in g} for g in read_groups(folder, [c.group_id for c in listed]) if g}
    for change in listed:
        if change.group_id not in groups:
            raise LookalikeError(f"no group {change.group_id} in this dedup run")
        if change.keeper is not None and change.keeper not in groups[change.group_id]:
            raise LookalikeError(f"group {change.group_id}: {change.keeper!r} is not one of its files")


def marked_choices(folder: Path, review: ReviewState) -> list[KeeperChoice]:
    """Every marked group (on any page) with its chosen keeper, else the run's suggested one, in group order."""
    ids = sorted(review.marked)
    suggested = {g[0].group_id: g[0].path for g in read_groups(folder, ids) if g}  # keeper first in each group
    return [KeeperChoice(g, review.keepers.get(g) or suggested[g]) for g in ids if g in suggested]
