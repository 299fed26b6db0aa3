"""Server-rendered HTML of the views; every value escaped (`esc`), every image a thumbnail URL of an indexed point."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any
from urllib.parse import urlencode

from pipeline.core.html import esc
from pipeline.dedup.groups import Member
from pipeline.serve.browse import CollectionSummary, EvalReport, report_json
from pipeline.serve.duplicates import DedupRunInfo, GroupPage
from pipeline.serve.maps_view import METHODS as MAP_METHODS
from pipeline.serve.review import ReviewState
from pipeline.serve.search import has_text_tower, thumb_url

VIEWS = (
    ("search", "/", "Search"),
    ("duplicates", "/duplicates", "Duplicates"),
    ("collections", "/collections", "Collections"),
    ("map", "/map", "Map"),
)


def layout(title: str, active: str, body: str, collection: str | None = None) -> str:
    """A whole page: the navigation (keeping the collection), the title, the body, the shared CSS and script."""
    keep = f"?{urlencode({'collection': collection})}" if collection else ""
    links = "".join(
        f'<a href="{href}{keep}" class="{"active" if name == active else ""}" id="nav-{name}">{label}</a>'
        for name, href, label in VIEWS
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)} · lookalike</title>'
        '<link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>'
        f'<body data-collection="{esc(collection or "")}" data-view="{active}">'
        f'<header class="top"><span class="brand">lookalike</span><nav>{links}</nav></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def picker(collections: Sequence[str], current: str | None, name: str = "collection") -> str:
    """A select that reloads the page with the chosen collection."""
    options = "".join(f"<option{' selected' if c == current else ''}>{esc(c)}</option>" for c in collections)
    return f'<label class="field">Collection<select name="{name}" data-autosubmit>{options}</select></label>'


def hit_card(hit: Mapping[str, Any], params: Mapping[str, str]) -> str:
    """One result: thumbnail, rank, score, path and label; a link that searches from it."""
    href = "/?" + urlencode({**params, "id": hit["point_id"]})
    path = str(hit.get("path") or "")
    return (
        f'<a class="card" href="{esc(href)}" data-point="{esc(hit["point_id"])}" title="{esc(path)}">'
        f'<div class="thumb"><img src="{esc(hit["thumb"])}" alt="{esc(PurePath(path).name)}" loading="lazy"></div>'
        f'<div class="meta"><span class="rank">#{hit["rank"]}</span><span class="score">{hit["score"]:.4f}</span>'
        f'</div><div class="path">&lrm;{esc(path)}</div><div class="label">{esc(hit.get("label") or "")}</div></a>'
    )


def search_page(
    collections: Sequence[str], params: Mapping[str, str], encoders: Sequence[str], result: Mapping[str, Any] | None
) -> str:
    """The search view: the form and drop zone; the results of a search by point id when there is one."""
    collection = params.get("collection")
    form = (
        f'<form class="bar" id="search-form" method="get" action="/">{picker(collections, collection)}'
        f"{_encoder_picker(encoders, params.get('encoder'))}"
        f'<label class="field">k<input type="number" name="k" min="1" value="{esc(params.get("k", "10"))}"></label>'
        f'<label class="field">label<input type="text" name="label" value="{esc(params.get("label", ""))}"></label>'
        f'<label class="field">group<input type="text" name="group" value="{esc(params.get("group", ""))}"></label>'
        + _text_box(encoders, params.get("text", ""))
        + (f'<input type="hidden" name="id" value="{esc(params["id"])}">' if params.get("id") else "")
        + '<div class="drop" id="drop">Drop an image here, or <input type="file" id="file" name="image" '
        'accept="image/*"></div><button type="submit">Search</button></form>'
    )
    shown = {k: v for k, v in params.items() if k not in ("id", "text") and v}
    if result is None:
        body = '<div class="query" id="query" hidden></div><div id="status"></div><div class="grid" id="results"></div>'
        return layout("Search", "search", form + body, collection)
    head = _query_head(result)
    status = f'<div id="status">{len(result["hits"])} results in {result["ms"]} ms</div>'
    cards = "".join(hit_card(h, shown) for h in result["hits"])
    grid = f'<div class="grid" id="results">{cards}</div>'
    return layout("Search", "search", form + head + status + grid, collection)


def _text_box(encoders: Sequence[str], text: str) -> str:
    """A text query field, for collections made by an encoder with a text tower (CLIP)."""
    if not any(has_text_tower(e) for e in encoders):
        return ""
    return (
        '<label class="field">text (CLIP)<input type="text" name="text" id="text" placeholder="a red car" '
        f'value="{esc(text)}"></label>'
    )


def _query_head(result: Mapping[str, Any]) -> str:
    query = result["query"]
    if query["kind"] == "text":
        return (
            f'<div class="query" id="query"><div><strong>Text:</strong> {esc(query["name"])}<br>'
            f'<span class="note">{esc(result["encoder"])} text tower</span></div></div>'
        )
    return (
        f'<div class="query" id="query"><img src="{esc(thumb_url(result["collection"], query["point_id"], 200))}" '
        f'alt=""><div><strong>Query:</strong> {esc(query["name"])}<br><span class="note">indexed point '
        f"{esc(query['point_id'])} · {esc(result['encoder'])}</span></div></div>"
    )


def _encoder_picker(encoders: Sequence[str], current: str | None) -> str:
    if len(encoders) < 2:
        return ""
    options = "".join(f"<option{' selected' if e == current else ''}>{esc(e)}</option>" for e in encoders)
    return f'<label class="field">Encoder<select name="encoder">{options}</select></label>'


def duplicates_page(
    collections: Sequence[str],
    collection: str,
    run: DedupRunInfo | None,
    page: GroupPage | None,
    move_to: str,
    review: ReviewState | None = None,
    per_page: int | None = None,
) -> str:
    """The duplicates view: the run, "compute now", the page of groups with keeper choice and marks (as the review
    kept beside the run has them), the moves of every marked group."""
    threshold = run.threshold if run and run.threshold is not None else 0.9
    top = (
        f'<div class="bars"><form class="bar" method="get" action="/duplicates">{picker(collections, collection)}'
        '</form><form class="bar grow" id="compute-form"><label class="field">Threshold (similarity)<input '
        f'type="number" name="threshold" step="any" value="{threshold:g}"></label><button type="submit" '
        'class="secondary" id="compute">Compute now</button><span class="note">runs <code>lookalike dedup</code> on '
        "the collection in the background and replaces the run shown here</span></form></div>"
    )
    if run is None or page is None:
        note = '<p class="note" id="no-run">No dedup run for this collection yet: compute one above, or run '
        note += f"<code>lookalike dedup -c {esc(collection)} --threshold 0.9</code>.</p>"
        return layout("Duplicates", "duplicates", top + '<div id="status"></div>' + note, collection)
    review = review or ReviewState("")
    info = (
        f'<p class="note" id="run-info">{run.groups:,} groups · {run.files:,} files · threshold '
        f"{'?' if run.threshold is None else f'{run.threshold:g}'} · {esc(run.encoder or '')} · from "
        f"<code>{esc(run.folder)}</code></p>"
    )
    actions = (
        '<div class="bar"><span class="note">Non-keepers of marked groups (on every page: <strong id="marked-count">'
        f"{len(review.marked)}</strong> marked) move to "
        f'<code id="move-to">{esc(move_to)}</code> (checked, signed manifest, undoable; nothing deleted)</span>'
        '<button type="button" class="secondary" id="mark-all">Mark all on this page</button>'
        '<button type="button" class="secondary" id="clear-marks">Clear all marks</button>'
        '<button type="button" id="plan">Plan moves</button><button type="button" class="danger" id="apply">'
        'Apply moves</button></div><div id="status"></div><div class="outcome" id="outcome" hidden></div>'
    )
    groups = "".join(_group(collection, g, review) for g in page.groups)
    pager = _pager(collection, page, per_page)
    body = top + info + actions + pager + f'<div id="duplicates">{groups}</div>' + pager
    return layout("Duplicates", "duplicates", body, collection)


def _pager(collection: str, page: GroupPage, per_page: int | None) -> str:
    keep = {"per_page": per_page} if per_page else {}

    def link(n: int, text: str, rel: str) -> str:
        href = "/duplicates?" + urlencode({"collection": collection, "page": n, **keep})
        return f'<a href="{esc(href)}" rel="{rel}">{text}</a>' if 1 <= n <= page.pages and n != page.page else ""

    return (
        f'<nav class="pager">{link(page.page - 1, "« previous", "prev")}<span class="page-no">page {page.page} of '
        f"{page.pages}</span>{link(page.page + 1, 'next »', 'next')}</nav>"
    )


def _group(collection: str, members: Sequence[Member], review: ReviewState) -> str:
    gid = members[0].group_id
    chosen = review.keepers.get(gid)
    keeper = chosen if any(m.path == chosen for m in members) else members[0].path  # else the suggested one
    cards = "".join(_member(collection, m, m.path == keeper) for m in members)
    marked = gid in review.marked
    return (
        f'<section class="group{" marked" if marked else ""}" data-group="{gid}"><h3><label><input type="checkbox" '
        f'class="mark"{" checked" if marked else ""}> mark</label>Group {gid} <span class="note">{len(members)} '
        f'files</span></h3><div class="members">{cards}</div></section>'
    )


def _member(collection: str, m: Member, keep: bool) -> str:
    gone = not os.path.lexists(m.path)  # a stat per shown file: which ones have moved since the run
    score = "—" if m.score is None or math.isnan(m.score) else f"{m.score:.4f}"
    tags = f'<span class="tag role{" keep" if keep else ""}">{"keep" if keep else "move"}</span>'
    tags += ' <span class="tag gone">moved</span>' if gone else ""
    tags += ' <span class="tag gone">changed</span>' if m.changed else ""
    image = f'<img src="{esc(thumb_url(collection, m.point_id, 128))}" alt="" loading="lazy">'
    thumb = '<span class="note">not at this path any more</span>' if gone else image
    return (
        f'<label class="member{" keeper" if keep else ""}{" gone" if gone else ""}" title="{esc(m.path)}">'
        f'<input type="radio" name="keeper-{m.group_id}" value="{esc(m.path)}"{" checked" if keep else ""}> '
        f'{tags}<div class="thumb">{thumb}</div>'
        f'<div class="meta"><span class="tier" title="tier in the run">{esc(m.tier)}</span><span class="score" '
        f'title="similarity to the suggested keeper">{score}</span></div><div class="size">{m.width}×{m.height} · '
        f'{m.bytes / 1024:.0f} KiB</div><div class="path">&lrm;{esc(m.path)}</div></label>'
    )


def collections_page(summaries: Sequence[CollectionSummary], reports: Sequence[EvalReport]) -> str:
    """The collections view: one table row per collection with samples and links; then every eval report."""
    rows = "".join(_collection_row(s, [r for r in reports if r.collection == s.name]) for s in summaries)
    table = (
        '<table id="collections"><tr><th>collection</th><th>points</th><th>search</th><th>encoders [version]</th>'
        f"<th>samples</th><th>eval reports</th></tr>{rows}</table>"
    )
    listed = "".join(f"<li>{_report_link(r)}</li>" for r in reports) or "<li>none yet</li>"
    return layout("Collections", "collections", table + f'<h2>Eval reports</h2><ul id="reports">{listed}</ul>')


def _collection_row(s: CollectionSummary, reports: Sequence[EvalReport]) -> str:
    keep = urlencode({"collection": s.name})
    encoders = "<br>".join(f"{esc(spec)} <span class='note'>[{esc(ver)}]</span>" for _, spec, ver in s.encoders)
    samples = "".join(
        f'<a href="/?{esc(urlencode({"collection": s.name, "id": p}))}"><img src="{esc(thumb_url(s.name, p, 64))}" '
        'alt="" loading="lazy"></a>'
        for p in s.samples
    )
    links = f'<a href="/?{esc(keep)}">search</a> · <a href="/duplicates?{esc(keep)}">duplicates</a> · '
    links += f'<a href="/map?{esc(keep)}">map</a>'
    return (
        f'<tr data-collection="{esc(s.name)}"><td><strong>{esc(s.name)}</strong><br>{links}</td>'
        f"<td>{s.points:,}</td><td>{esc(s.backend)}, {esc(s.index)}</td><td>{encoders}</td>"
        f'<td><div class="samples">{samples}</div></td>'
        f"<td>{'<br>'.join(_report_link(r) for r in reports)}</td></tr>"
    )


def _report_link(report: EvalReport) -> str:
    shown = " · ".join(f"{k} {v:.3f}" for k, v in list(report.metrics.items())[:2])
    url = report_json(report)["url"]
    return f'<a href="{esc(url)}">{esc(report.name)}</a> <span class="note">{esc(shown)}</span>'


def map_page(collections: Sequence[str], collection: str, method: str, fragment: str, problem: str = "") -> str:
    """The map view: pickers for the collection and the layout, then the map (`pipeline.maps`) or why there is none."""
    methods = "".join(f"<option{' selected' if m == method else ''}>{m}</option>" for m in MAP_METHODS)
    form = (
        f'<form class="bar" method="get" action="/map">{picker(collections, collection)}<label class="field">Layout'
        f'<select name="method" data-autosubmit>{methods}</select></label><span class="note">the same map as '
        f"<code>lookalike map -c {esc(collection)} --method {esc(method)}</code>; umap and t-SNE take a while the "
        "first time. Click a point to search from it.</span></form>"
    )
    shown = f'<p class="error" id="map-error">{esc(problem)}</p>' if problem else f'<div id="map">{fragment}</div>'
    return layout("Map", "map", form + shown, collection)


def error_page(status: int, message: str) -> str:
    return layout(f"Error {status}", "", f'<p class="error" id="error">{esc(message)}</p>')
