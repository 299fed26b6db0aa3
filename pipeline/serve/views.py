"""The HTML views: search, duplicates, collections, map; each renders the same data its JSON route returns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from pipeline.core.errors import LookalikeError, first_line
from pipeline.serve.api import State, search_request
from pipeline.serve.assets import CSS, JS
from pipeline.serve.browse import describe, list_reports
from pipeline.serve.duplicates import read_page
from pipeline.serve.duplicates_api import PerPage, dedup_run
from pipeline.serve.maps_view import collection_map, map_fragment_html
from pipeline.serve.pages import collections_page, duplicates_page, layout, map_page, search_page
from pipeline.serve.review import load_review
from pipeline.serve.search import result_json, search_point, search_text
from pipeline.serve.state import ServeState

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def _collection(state: ServeState, asked: str | None) -> str | None:
    """The collection asked for (404 when unknown), else the default one; None for an empty store."""
    return state.require_collection(asked) if asked else state.default_collection()


def _empty_store(view: str) -> HTMLResponse:
    note = '<p class="note" id="empty">This store holds no collection yet: <code>lookalike ingest FOLDER -c NAME</code>'
    return HTMLResponse(layout(view.title(), view, note + " first.</p>"), headers=NO_STORE)


@router.get("/", response_class=HTMLResponse)
def search_view(
    state: State,
    collection: str | None = None,
    id: str | None = None,
    k: Annotated[int, Query(ge=1)] = 10,
    label: str = "",
    group: str = "",
    encoder: str = "",
    text: str = "",
) -> HTMLResponse:
    """Upload or drop an image; with `id`, the results of searching from that indexed point; with `text`, of a
    text search (CLIP collections)."""
    chosen = _collection(state, collection)
    if chosen is None:
        return _empty_store("search")
    request = search_request(state, chosen, k, label, group, encoder)
    found = search_text(state, request, text) if text.strip() else search_point(state, request, id) if id else None
    with state.engine() as store:
        encoders = sorted(store.encoder_specs(chosen).values())
    params = {"collection": chosen, "k": str(k), "label": label, "group": group, "encoder": encoder, "id": id or ""}
    params["text"] = text
    page = search_page(state.collections(), params, encoders, result_json(found) if found else None)
    return HTMLResponse(page, headers=NO_STORE)


@router.get("/duplicates", response_class=HTMLResponse)
def duplicates_view(
    state: State, collection: str | None = None, page: Annotated[int, Query(ge=1)] = 1, per_page: PerPage = None
) -> HTMLResponse:
    """The groups of the collection's dedup run, a page at a time, with keeper choice and marks (kept beside the run,
    so they survive paging) and moves."""
    chosen = _collection(state, collection)
    if chosen is None:
        return _empty_store("duplicates")
    run = dedup_run(state, chosen)
    shown = read_page(run.folder, page, per_page or state.settings.page_size) if run else None
    review = load_review(run.folder) if run else None
    move_to = str(state.settings.move_dir(chosen))
    shown_page = duplicates_page(state.collections(), chosen, run, shown, move_to, review, per_page)
    return HTMLResponse(shown_page, headers=NO_STORE)


@router.get("/collections", response_class=HTMLResponse)
def collections_view(state: State) -> HTMLResponse:
    """Every collection: counts, encoders and versions, samples, links; the eval reports."""
    summaries = [describe(state, name) for name in state.collections()]
    return HTMLResponse(collections_page(summaries, list_reports(state.settings.eval_dir)), headers=NO_STORE)


@router.get("/map", response_class=HTMLResponse)
def map_view(state: State, collection: str | None = None, method: str = "pca") -> HTMLResponse:
    """The collection's embedding map: hover shows thumbnail and path, a click searches from the point."""
    chosen = _collection(state, collection)
    if chosen is None:
        return _empty_store("map")
    try:
        fragment, problem = map_fragment_html(collection_map(state, chosen, method)), ""
    except LookalikeError as e:  # too few points, multivectors, a layout library missing: said in the page
        fragment, problem = "", first_line(e)
    return HTMLResponse(map_page(state.collections(), chosen, method, fragment, problem), headers=NO_STORE)


@router.get("/assets/app.css")
def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/assets/app.js")
def script() -> Response:
    return Response(JS, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)
