"""`store migrate`: move an embedded store written by earlier lookalike versions into the embedded engine."""

from __future__ import annotations

from pathlib import Path

import typer

from commands.common import Progress, StorePath, user_errors
from pipeline.core.config import StoreConfig
from pipeline.store.migrate import migrate_legacy


def store_migrate_command(
    store: StorePath = None,
    keep_old: bool = typer.Option(False, "--keep-old", help="Keep the old files after the verified copy"),
    progress: Progress = True,
) -> None:
    """Copy every collection of an old-format store folder (qdrant-client local mode, lookalike before 0.2) into
    the embedded Qdrant engine in the same folder, check each point, then remove the old files. Safe to re-run."""
    with user_errors():
        report = migrate_legacy(Path(StoreConfig.from_env(path=store).path), keep_old, progress)
    for c in report.collections:
        typer.echo(f"migrated {c.name}: {c.points} points, every one checked")
    typer.echo("old files removed" if report.removed_old else f"old files kept in {report.folder}")
