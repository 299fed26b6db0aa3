"""`serve`: the web app (search, review duplicates, browse collections) over one store, models kept warm."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.common import STORE_OPTIONS, RunOptions, user_errors, with_run_options
from pipeline.core.config import signing_key_path
from pipeline.core.device import resolve_device
from pipeline.core.errors import LookalikeError
from pipeline.encoders import Encoder, EncoderOptions, create_encoder
from pipeline.store import VectorStore

if TYPE_CHECKING:  # the serve extra (fastapi) is imported only when the command runs
    from pipeline.serve import ServeSettings

TOKEN_ENV = "LOOKALIKE_SERVE_TOKEN"


def _read_dedup_collection(folder: Path, fallback: str | None) -> str:
    """The collection a dedup output folder was made for (its summary.json), else --collection."""
    try:
        named = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["config"]["collection"]
    except (OSError, ValueError, KeyError, TypeError):
        named = None
    if isinstance(named, str) and named:
        return named
    if fallback:
        return fallback
    raise LookalikeError(f"--dedup {folder}: no summary.json naming its collection; add --collection NAME")


def _settings(collection: str | None, host: str, token: str | None, **given: Any) -> ServeSettings:
    """The server's settings from the options (the serve extra imported only now)."""
    from pipeline.serve.settings import LOOPBACK_HOSTS, ServeSettings, is_loopback

    dedup: Path | None = given.pop("dedup")
    dedup_dirs = {_read_dedup_collection(dedup, collection): dedup} if dedup else {}
    return ServeSettings(
        collection=collection,
        token=token or None,
        dedup_dirs=dedup_dirs,
        signing_key=signing_key_path(),
        allowed_hosts=LOOPBACK_HOSTS if is_loopback(host) else (),
        **given,
    )


def _serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise LookalikeError(
            f"lookalike serve needs the web extra ({e.name} is not installed): pip install 'lookalike[serve]'"
        ) from None


@with_run_options(*STORE_OPTIONS, "device", "no_face")
def serve_command(
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection shown first")] = None,
    host: Annotated[str, typer.Option(help="Address to bind; anything but the loopback warns")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help=f"Require this token on every request (Bearer header, or open /?token=…) [env {TOKEN_ENV}]"),
    ] = None,
    runs: Annotated[
        Path, typer.Option(help="Runs folder: dedup runs in dedup/<collection>, eval reports in eval/")
    ] = Path("runs"),
    dedup: Annotated[
        Path | None,
        typer.Option(help="A dedup output folder to review [default <runs>/dedup/<collection>]"),
    ] = None,
    move_to: Annotated[
        Path | None, typer.Option(help="Where applied moves put non-keepers [default <runs>/dedup/<collection>/moved]")
    ] = None,
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Refuse request bodies over this many MB (413)")] = 20,
    *,
    run: RunOptions,
) -> None:
    """Serve search, duplicate review and collection browsing at http://HOST:PORT (every view also a JSON API).

    Encoders load once per collection and stay warm. The embedded store is locked by the server for its whole
    lifetime: stop it (Ctrl-C) before running other commands on the same store, or use --qdrant-url.
    """
    with user_errors():
        _serve_extra()
        token = token or os.environ.get(TOKEN_ENV) or None
        settings = _settings(
            collection, host, token, runs=runs, dedup=dedup, move_to=move_to, max_upload_bytes=max_upload_mb * 2**20
        )
        torch_device = resolve_device(run.device)
        options = EncoderOptions(no_face=run.no_face_policy())
        with run.open_store() as vs:
            _run_server(settings, vs, lambda spec: create_encoder(spec, torch_device, options), host, port)


def _run_server(
    settings: ServeSettings, store: VectorStore, make_encoder: Callable[[str], Encoder], host: str, port: int
) -> None:
    import uvicorn

    from pipeline.serve import create_app, warm_up
    from pipeline.serve.settings import is_loopback

    app = create_app(settings, store, make_encoder)
    if settings.collection:
        typer.echo(f"{settings.collection}: {warm_up(app, settings.collection)} loaded")
    if not is_loopback(host):
        typer.echo(
            f"warning: --host {host} serves your images and file moves to the network"
            + ("" if settings.token else "; anyone who can reach it gets in (set --token)"),
            err=True,
        )
    typer.echo(f"serving http://{host}:{port}/ (Ctrl-C stops; the store stays locked until then)")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
