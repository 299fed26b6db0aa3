"""The JSON API: every view's data, searches, thumbnails, eval reports, the map (duplicate review and moves:
`pipeline.serve.duplicates_api`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

from pipeline.serve.browse import collection_json, describe, list_reports, report_file, report_json
from pipeline.serve.maps_view import collection_map, map_json
from pipeline.serve.search import (
    SearchRequest,
    result_json,
    search_point,
    search_text,
    search_upload,
)
from pipeline.serve.state import ServeState
from pipeline.serve.thumbs import thumbnail_jpeg

router = APIRouter()


def get_state(request: Request) -> ServeState:
    """The app's state, injected into every route (set by `create_app`)."""
    state: ServeState = request.app.state.serve
    return state


State = Annotated[ServeState, Depends(get_state)]
K = Annotated[int, Query(ge=1, description="results")]


def search_request(state: ServeState, collection: str, k: int, label: str, group: str, encoder: str) -> SearchRequest:
    """The search asked for; empty filters and encoder mean none.

    Raises:
        HTTPException: 422 for k above the server's `max_k`.
    """
    if k > state.settings.max_k:
        raise HTTPException(422, f"k = {k}: at most {state.settings.max_k} results per search")
    return SearchRequest(collection, k, label.strip() or None, group.strip() or None, encoder.strip() or None)


@router.get("/api/search")
def search_by_id(
    state: State, collection: str, id: str, k: K = 10, label: str = "", group: str = "", encoder: str = ""
) -> dict[str, Any]:
    """Search from an indexed point (its stored vector)."""
    return result_json(search_point(state, search_request(state, collection, k, label, group, encoder), id))


@router.get("/api/search/text")
def search_by_text(
    state: State, collection: str, q: str, k: K = 10, label: str = "", group: str = "", encoder: str = ""
) -> dict[str, Any]:
    """Search images from a text (CLIP collections: the text tower of the model that filled them)."""
    return result_json(search_text(state, search_request(state, collection, k, label, group, encoder), q))


@router.post("/api/search")
def search_by_upload(
    state: State,
    image: Annotated[UploadFile, File(description="the query image")],
    collection: Annotated[str, Form()],
    k: Annotated[int, Form(ge=1)] = 10,
    label: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    encoder: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """Search from an uploaded image (multipart field `image`)."""
    request = search_request(state, collection, k, label, group, encoder)
    data = image.file.read()
    return result_json(search_upload(state, request, data, image.filename or "upload"))


@router.get("/thumb/{collection}/{point_id}")
def thumbnail(state: State, collection: str, point_id: str, px: Annotated[int, Query(ge=16)] = 160) -> Response:
    """A JPEG thumbnail of an indexed point (404 for anything else)."""
    data = thumbnail_jpeg(state, collection, point_id, px)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


@router.get("/api/collections")
def collections(state: State) -> dict[str, Any]:
    """Every collection with counts, encoders, versions, sample points and the eval reports that name it."""
    reports = list_reports(state.settings.eval_dir)
    listed = [collection_json(describe(state, name), reports) for name in state.collections()]
    return {"default": state.default_collection(), "collections": listed}


@router.get("/api/reports")
def reports(state: State) -> dict[str, Any]:
    """The eval reports written under runs/eval."""
    return {"reports": [report_json(r) for r in list_reports(state.settings.eval_dir)]}


@router.get("/reports/{name}/{file}")
def report(state: State, name: str, file: str) -> FileResponse:
    """report.html or metrics.json of one eval report folder, read-only."""
    path = report_file(state.settings.eval_dir, name, file)
    return FileResponse(path, media_type="text/html" if path.suffix == ".html" else "application/json")


@router.get("/api/map")
def map_points(state: State, collection: str, method: str = "pca", color_by: str = "label") -> dict[str, Any]:
    """The collection's embedding map (`pipeline.maps`): every drawn point's 2-D position, label and thumbnail."""
    return map_json(collection_map(state, collection, method, color_by))
