"""The JSON API: every view's data, searches, thumbnails, eval reports, duplicate review and moves."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from pipeline.core.config import signing_key_path
from pipeline.core.signing import SigningKey
from pipeline.dedup.run import DedupRequest, ThresholdChoice, run_dedup
from pipeline.serve.browse import collection_json, describe, list_reports, report_file, report_json
from pipeline.serve.duplicates import (
    DedupRunInfo,
    KeeperChoice,
    MoveOutcome,
    apply,
    chosen_members,
    member_json,
    outcome_json,
    plan,
    read_page,
    read_run,
)
from pipeline.serve.maps_view import collection_map, map_json
from pipeline.serve.search import (
    SearchRequest,
    result_json,
    search_point,
    search_text,
    search_upload,
    thumb_url,
)
from pipeline.serve.state import ServeState
from pipeline.serve.thumbs import thumbnail_jpeg
from pipeline.store.scoring import pair_similarity

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


def dedup_run(state: ServeState, collection: str) -> DedupRunInfo | None:
    """The collection's dedup run under review (None when there is none yet).

    Raises:
        HTTPException: 404 for an unknown collection.
        LookalikeError: the run folder's groups file is not a dedup run's.
    """
    state.require_collection(collection)
    return read_run(state.settings.dedup_dir(collection), collection)


@router.get("/api/duplicates")
def duplicates(state: State, collection: str, page: Annotated[int, Query(ge=1)] = 1) -> dict[str, Any]:
    """One page of groups of the collection's dedup run (`run: null` when there is none yet)."""
    run = dedup_run(state, collection)
    move_to = str(state.settings.move_dir(collection))
    if run is None:
        return {"collection": collection, "run": None, "groups": [], "move_to": move_to}
    shown = read_page(run.folder, page, state.settings.page_size)
    groups = [
        {"group_id": g[0].group_id, "members": [member_json(m, thumb_url(collection, m.point_id, 128)) for m in g]}
        for g in shown.groups
    ]
    info = {"folder": str(run.folder), "threshold": run.threshold, "encoder": run.encoder, "groups": run.groups}
    paging = {"page": shown.page, "pages": shown.pages, "per_page": state.settings.page_size}
    run_json = {**info, "files": run.files}
    return {"collection": collection, "run": run_json, **paging, "groups": groups, "move_to": move_to}


class ComputeBody(BaseModel):
    collection: str
    threshold: float = Field(allow_inf_nan=False)


@router.post("/api/duplicates/compute")
def compute(state: State, body: ComputeBody) -> dict[str, Any]:
    """Run dedup on the collection now (as `lookalike dedup -c C --threshold T`) into its dedup folder."""
    collection = state.require_collection(body.collection)
    out = state.settings.dedup_dir(collection)
    request = DedupRequest(collection, out, ThresholdChoice(threshold=body.threshold), progress=False)
    with state.engine() as store:
        run = run_dedup(store, request, torch.device(state.settings.device), state.make_encoder)
    return {"collection": collection, "folder": str(out), "groups": run.result.stats.groups}


class KeeperBody(BaseModel):
    group_id: int
    keeper: str


class MovesBody(BaseModel):
    collection: str
    groups: list[KeeperBody] = Field(min_length=1, max_length=100_000)


def _members(state: ServeState, body: MovesBody) -> tuple[DedupRunInfo, list[Any]]:
    run = dedup_run(state, body.collection)
    if run is None:
        raise HTTPException(404, f"no dedup run for collection {body.collection!r}: compute one first")
    choices = [KeeperChoice(g.group_id, g.keeper) for g in body.groups]
    return run, chosen_members(run.folder, choices, lambda ids, keeper: _keeper_scores(state, run, ids, keeper))


def _keeper_scores(state: ServeState, run: DedupRunInfo, ids: Any, keeper: str) -> dict[str, float]:
    """Each point's similarity to a newly chosen keeper, from the stored vectors."""
    if run.vector is None or run.vector.multivector:  # unknown vector, or sets of vectors of varying size: unscored
        return {}
    with state.engine() as store:
        vectors = store.get_vectors(run.collection, list(ids), run.vector.name)
    if keeper not in vectors:
        return {}
    known = [i for i in ids if i in vectors]
    rows = np.stack([vectors[i] for i in known])  # (M, D)
    scores = pair_similarity(rows, np.broadcast_to(vectors[keeper], rows.shape), run.vector.distance)
    return {i: float(s) for i, s in zip(known, scores, strict=True)}


@router.post("/api/duplicates/plan")
def plan_moves_route(state: State, body: MovesBody) -> dict[str, Any]:
    """The moves the marked groups' non-keepers would make; nothing is touched."""
    run, members = _members(state, body)
    return outcome_json(plan(members, state.settings.move_dir(body.collection), run.threshold))


@router.post("/api/duplicates/apply")
def apply_moves_route(state: State, body: MovesBody) -> dict[str, Any]:
    """Move the marked groups' non-keepers (checked, signed manifest, undo command in the answer)."""
    run, members = _members(state, body)
    key = SigningKey.load(state.settings.signing_key or signing_key_path())
    with state.engine():  # one apply at a time
        outcome: MoveOutcome = apply(members, state.settings.move_dir(body.collection), run.threshold, key)
    return outcome_json(outcome)


@router.get("/api/map")
def map_points(state: State, collection: str, method: str = "pca", color_by: str = "label") -> dict[str, Any]:
    """The collection's embedding map (`pipeline.maps`): every drawn point's 2-D position, label and thumbnail."""
    return map_json(collection_map(state, collection, method, color_by))
