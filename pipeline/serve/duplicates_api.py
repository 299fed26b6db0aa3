"""The JSON API of duplicate review: a run's groups page by page, "compute now" as a background job, the review
kept beside the run (marks and keepers, across pages), and moves planned or applied with the CLI's safe code."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from pipeline.core.config import signing_key_path
from pipeline.core.errors import LookalikeError
from pipeline.core.signing import SigningKey
from pipeline.dedup.run import DedupRequest, ThresholdChoice, run_dedup
from pipeline.serve.api import State
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
from pipeline.serve.review import (
    GroupReview,
    ReviewState,
    check_changes,
    load_review,
    marked_choices,
    save_review,
    updated,
)
from pipeline.serve.search import thumb_url
from pipeline.serve.state import ServeState
from pipeline.store.scoring import pair_similarity

router = APIRouter()
PerPage = Annotated[int | None, Query(ge=1, le=1000, description="groups per page (default: the server's)")]


def dedup_run(state: ServeState, collection: str) -> DedupRunInfo | None:
    """The collection's dedup run under review (None when there is none yet).

    Raises:
        HTTPException: 404 for an unknown collection.
        LookalikeError: the run folder's groups file is not a dedup run's.
    """
    state.require_collection(collection)
    return read_run(state.settings.dedup_dir(collection), collection)


def existing_run(state: ServeState, collection: str) -> DedupRunInfo:
    """The collection's dedup run.

    Raises:
        HTTPException: 404 for an unknown collection, or one without a dedup run yet.
    """
    run = dedup_run(state, collection)
    if run is None:
        raise HTTPException(404, f"no dedup run for collection {collection!r}: compute one first")
    return run


@router.get("/api/duplicates")
def duplicates(
    state: State, collection: str, page: Annotated[int, Query(ge=1)] = 1, per_page: PerPage = None
) -> dict[str, Any]:
    """One page of groups of the collection's dedup run (`run: null` when there is none yet).

    Each group: `group_id`, `members` (keeper first), `marked` and `keeper` (the chosen keeper's path, else the
    suggested one's) from the review kept beside the run; `marked` at the top counts the marked groups of all pages.
    """
    run = dedup_run(state, collection)
    move_to = str(state.settings.move_dir(collection))
    if run is None:
        return {"collection": collection, "run": None, "groups": [], "move_to": move_to}
    size = per_page or state.settings.page_size
    shown = read_page(run.folder, page, size)
    review = load_review(run.folder)
    groups = [
        {
            "group_id": g[0].group_id,
            "marked": g[0].group_id in review.marked,
            "keeper": review.keepers.get(g[0].group_id, g[0].path),
            "members": [member_json(m, thumb_url(collection, m.point_id, 128)) for m in g],
        }
        for g in shown.groups
    ]
    info = {"folder": str(run.folder), "threshold": run.threshold, "encoder": run.encoder, "groups": run.groups}
    paging = {"page": shown.page, "pages": shown.pages, "per_page": size, "marked": len(review.marked)}
    run_json = {**info, "files": run.files}
    return {"collection": collection, "run": run_json, **paging, "groups": groups, "move_to": move_to}


class ComputeBody(BaseModel):
    collection: str
    threshold: float = Field(allow_inf_nan=False)


@router.post("/api/duplicates/compute", status_code=202)
def compute(state: State, body: ComputeBody) -> dict[str, Any]:
    """Start a dedup of the collection (as `lookalike dedup -c C --threshold T`) into its dedup folder, in the
    background: 202 with the job (`job`, `collection`, `threshold`, `state: "running"`, `started`); 409 while another
    compute runs. Poll `GET /api/duplicates/compute/status`. Other requests are answered meanwhile: the job holds
    the store for one store call at a time."""
    collection = state.require_collection(body.collection)
    out = state.settings.dedup_dir(collection)
    request = DedupRequest(collection, out, ThresholdChoice(threshold=body.threshold), progress=False)

    def work() -> int:
        run = run_dedup(state.shared_store(), request, torch.device(state.settings.device), state.make_encoder)
        return run.result.stats.groups

    job = state.jobs.start(collection, body.threshold, work)
    if job is None:
        raise HTTPException(409, _busy(state))
    return {**job.to_json(), "folder": str(out)}


@router.get("/api/duplicates/compute/status")
def compute_status(state: State) -> dict[str, Any]:
    """The latest compute: `state` "running", "done" (with `groups`, the number found) or "failed" (with `error`,
    one line), its `job`, `collection`, `threshold`, `started` and `finished` (Unix times); `state: "idle"` and
    `job: null` before the first."""
    job = state.jobs.latest()
    return job.to_json() if job else {"job": None, "state": "idle"}


def _busy(state: ServeState) -> str:
    job = state.jobs.running()
    where = f" on {job.collection!r} (job {job.job})" if job else ""
    return f"a compute is running{where}: wait for it (GET /api/duplicates/compute/status)"


def _check_not_computing(state: ServeState, collection: str) -> None:
    """Refuse moves while the collection's run is being rewritten.

    Raises:
        HTTPException: 409 while a compute of `collection` runs.
    """
    job = state.jobs.running()
    if job is not None and job.collection == collection:
        raise HTTPException(409, _busy(state))


def review_json(collection: str, review: ReviewState) -> dict[str, Any]:
    return {"collection": collection, **review.to_json()}


@router.get("/api/duplicates/review")
def get_review(state: State, collection: str) -> dict[str, Any]:
    """The review of the collection's run: `marked` (group ids, every page) and `keepers` (group id → the chosen
    keeper's path); `run` identifies the run they belong to (a run computed again starts with an empty review)."""
    return review_json(collection, load_review(existing_run(state, collection).folder))


class GroupReviewBody(BaseModel):
    group_id: int
    marked: bool
    keeper: str | None = None


class ReviewBody(BaseModel):
    collection: str
    groups: list[GroupReviewBody] = Field(max_length=100_000)


@router.put("/api/duplicates/review")
def put_review(state: State, body: ReviewBody) -> dict[str, Any]:
    """Set the listed groups' marks (`marked`) and chosen keepers (`keeper`, a path of the group; null leaves it);
    groups not listed keep theirs. Answers the whole review, as GET does; 422 for an unknown group or keeper."""
    folder = existing_run(state, body.collection).folder
    changes = [GroupReview(g.group_id, g.marked, g.keeper) for g in body.groups]
    check_changes(folder, changes)
    with state.review_lock:
        review = updated(load_review(folder), changes)
        save_review(folder, review)
    return review_json(body.collection, review)


@router.delete("/api/duplicates/review")
def clear_review(state: State, collection: str) -> dict[str, Any]:
    """Forget every mark and keeper choice of the collection's run; answers the (empty) review."""
    folder = existing_run(state, collection).folder
    with state.review_lock:
        review = ReviewState(load_review(folder).run)
        save_review(folder, review)
    return review_json(collection, review)


class KeeperBody(BaseModel):
    group_id: int
    keeper: str


class MovesBody(BaseModel):
    """The groups to act on: those listed in `groups`, and with `marked: true` every group marked in the review (all
    pages; a listed group's keeper wins over the review's)."""

    collection: str
    groups: Annotated[list[KeeperBody], Field(min_length=1, max_length=100_000)] | None = None
    marked: bool = False


def _choices(run: DedupRunInfo, body: MovesBody) -> list[KeeperChoice]:
    """The groups and keepers a move request names.

    Raises:
        LookalikeError: it names none (no groups listed, none marked).
    """
    listed = [KeeperChoice(g.group_id, g.keeper) for g in body.groups or []]
    if not body.marked:
        if not listed:
            raise LookalikeError("groups: list the groups to act on, or send marked: true for the marked ones")
        return listed
    named = {c.group_id for c in listed}
    choices = [c for c in marked_choices(run.folder, load_review(run.folder)) if c.group_id not in named] + listed
    if not choices:
        raise LookalikeError("no group is marked: mark at least one group first")
    return choices


def _members(state: ServeState, body: MovesBody) -> tuple[DedupRunInfo, list[Any]]:
    _check_not_computing(state, body.collection)
    run = existing_run(state, body.collection)
    choices = _choices(run, body)
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
    """The moves the chosen groups' non-keepers would make (`groups`, and with `marked: true` every marked group of
    every page); nothing is touched. 409 while a compute of the collection runs."""
    run, members = _members(state, body)
    return outcome_json(plan(members, state.settings.move_dir(body.collection), run.threshold))


@router.post("/api/duplicates/apply")
def apply_moves_route(state: State, body: MovesBody) -> dict[str, Any]:
    """Move the chosen groups' non-keepers (the body as for plan; checked, signed manifest, undo command in the
    answer). 409 while a compute of the collection runs."""
    run, members = _members(state, body)
    key = SigningKey.load(state.settings.signing_key or signing_key_path())
    with state.engine():  # one apply at a time
        outcome: MoveOutcome = apply(members, state.settings.move_dir(body.collection), run.threshold, key)
    return outcome_json(outcome)
