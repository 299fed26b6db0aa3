"""The app factory: a FastAPI app over an injected store and encoder factory, no globals."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException

from pipeline.core.errors import EncoderVersionError, LookalikeError, StoreError, first_line
from pipeline.encoders.base import Encoder
from pipeline.serve import api, duplicates_api, views
from pipeline.serve.guard import RequestGuard, error
from pipeline.serve.pages import error_page
from pipeline.serve.settings import ServeSettings
from pipeline.serve.state import ServeState
from pipeline.store import VectorStore

HTML_VIEWS = frozenset(("/", "/duplicates", "/collections", "/map"))


def create_app(
    settings: ServeSettings,
    store: VectorStore,
    make_encoder: Callable[[str], Encoder],
) -> FastAPI:
    """The lookalike web app.

    Args:
        settings: token, upload cap, runs folder, … (see `ServeSettings`).
        store: the open store, kept for the app's lifetime (the caller closes it).
        make_encoder: builds an encoder from a collection's encoder spec; called once per spec, then kept warm.

    Returns:
        The app; every request passes `RequestGuard` (hosts, token, body cap) before any route.
    """
    app = FastAPI(title="lookalike", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = ServeState(settings, store, make_encoder)
    app.include_router(api.router)
    app.include_router(duplicates_api.router)
    app.include_router(views.router)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(LookalikeError, _lookalike_error)  # type: ignore[arg-type]
    app.add_middleware(
        RequestGuard,
        token=settings.token,
        max_body=settings.max_upload_bytes,
        allowed_hosts=settings.allowed_hosts,
    )
    return app


def _respond(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An HTML error page for the views, the one-line JSON error everywhere else."""
    if request.url.path in HTML_VIEWS:
        return HTMLResponse(error_page(status, message), status_code=status, headers=headers)
    return error(status, message, headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _respond(request, exc.status_code, str(exc.detail), dict(exc.headers or {}) or None)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    message = str(first.get("msg", "invalid request")).splitlines()[0]
    return _respond(request, 422, f"{where or 'request'}: {message}")


async def _lookalike_error(request: Request, exc: LookalikeError) -> Response:
    return _respond(request, 409 if isinstance(exc, EncoderVersionError) else 422, first_line(exc))


def warm_up(app: FastAPI, collection: str, encoder: str | None = None) -> str:
    """Build the encoder of `collection` now and run it once, so the first search is as fast as the rest.

    Returns:
        The encoder spec kept warm.

    Raises:
        StoreError: the store holds no such collection.
        LookalikeError: several vectors and none chosen; EncoderVersionError: the encoder changed since ingest.
    """
    state: ServeState = app.state.serve
    if collection not in (names := state.collections()):
        have = ", ".join(names) or "none yet"
        raise StoreError(f"no collection {collection!r} in this store (it has: {have})", setting="collection")
    vector = state.search_vector(collection, encoder)
    model = state.encoder(vector)
    with state.engine():
        model.encode([model.prepare(Image.new("RGB", (64, 64), (128, 128, 128)))])
    return vector.encoder
