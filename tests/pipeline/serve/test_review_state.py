"""The review of a dedup run kept beside it: marks and keeper choices survive paging, plan and apply act on the
marked groups of every page, and a run computed again starts clean."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, Planted

from pipeline.serve.review import REVIEW_NAME

Fresh = tuple[Planted, Any]


def _page(client: Any, page: int) -> dict[str, Any]:
    answer = client.get("/api/duplicates", params={"collection": COLLECTION, "page": page})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _put(client: Any, *groups: dict[str, Any]) -> Any:
    return client.put("/api/duplicates/review", json={"collection": COLLECTION, "groups": list(groups)})


def _other_member(group: dict[str, Any]) -> str:
    return str(next(m["path"] for m in group["members"] if not m["keeper"]))


def test_a_mark_and_a_keeper_survive_going_to_another_page_and_back(fresh: Fresh) -> None:
    _, client = fresh
    [first] = _page(client, 1)["groups"]
    assert not first["marked"] and first["keeper"] == first["members"][0]["path"]  # nothing chosen yet
    chosen = _other_member(first)
    saved = _put(client, {"group_id": first["group_id"], "marked": True, "keeper": chosen})
    assert saved.status_code == 200, saved.text
    assert saved.json()["marked"] == [first["group_id"]]

    second = _page(client, 2)
    assert [g["marked"] for g in second["groups"]] == [False] and second["marked"] == 1
    again = _page(client, 1)
    assert again["groups"][0]["marked"] and again["groups"][0]["keeper"] == chosen and again["marked"] == 1

    html = client.get("/duplicates", params={"collection": COLLECTION, "page": 1}).text
    assert 'class="mark" checked' in html and 'id="marked-count">1<' in html
    assert f'value="{chosen}" checked' in html  # the chosen keeper's radio, not the suggested one's
    assert 'class="mark" checked' not in client.get("/duplicates", params={"collection": COLLECTION, "page": 2}).text


def test_plan_covers_the_marked_groups_of_every_page(fresh: Fresh) -> None:
    planted, client = fresh
    one, two = (_page(client, p)["groups"][0] for p in (1, 2))
    assert _put(client, {"group_id": one["group_id"], "marked": True}).status_code == 200
    assert _put(client, {"group_id": two["group_id"], "marked": True}).status_code == 200
    answer = client.post("/api/duplicates/plan", json={"collection": COLLECTION, "marked": True})
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert sorted({m["group_id"] for m in plan["moves"]}) == sorted([one["group_id"], two["group_id"]])
    assert plan["counts"] == {"planned": 2} and all(p.is_file() for p in planted.paths.values())


def test_a_chosen_keeper_in_the_review_is_the_one_applied(fresh: Fresh) -> None:
    planted, client = fresh
    group = next(g for p in (1, 2) for g in _page(client, p)["groups"] if "img0" in json.dumps(g))
    _put(client, {"group_id": group["group_id"], "marked": True, "keeper": str(planted.paths["near"])})
    applied = client.post("/api/duplicates/apply", json={"collection": COLLECTION, "marked": True})
    assert applied.status_code == 200, applied.text
    assert applied.json()["counts"] == {"moved": 1}
    assert not planted.paths["img0"].exists() and planted.paths["near"].is_file()


def test_listed_groups_and_marked_ones_are_joined_a_listed_keeper_winning(fresh: Fresh) -> None:
    _, client = fresh
    one, two = (_page(client, p)["groups"][0] for p in (1, 2))
    _put(client, {"group_id": one["group_id"], "marked": True})
    listed = [{"group_id": one["group_id"], "keeper": _other_member(one)}]
    plan = client.post("/api/duplicates/plan", json={"collection": COLLECTION, "marked": True, "groups": listed}).json()
    assert [m["original"] for m in plan["moves"]] == [one["members"][0]["path"]]  # the suggested keeper moves
    _put(client, {"group_id": two["group_id"], "marked": True})
    plan = client.post("/api/duplicates/plan", json={"collection": COLLECTION, "marked": True, "groups": listed}).json()
    assert {m["group_id"] for m in plan["moves"]} == {one["group_id"], two["group_id"]}


def test_nothing_marked_nothing_planned(fresh: Fresh) -> None:
    _, client = fresh
    answer = client.post("/api/duplicates/plan", json={"collection": COLLECTION, "marked": True})
    assert answer.status_code == 422 and "no group is marked" in answer.json()["error"]
    answer = client.post("/api/duplicates/plan", json={"collection": COLLECTION})
    assert answer.status_code == 422 and "groups" in answer.json()["error"]


def test_the_review_is_a_json_file_beside_the_run_written_atomically(fresh: Fresh) -> None:
    planted, client = fresh
    [group] = _page(client, 2)["groups"]
    _put(client, {"group_id": group["group_id"], "marked": True, "keeper": _other_member(group)})
    folder = planted.runs / "dedup" / COLLECTION
    saved = json.loads((folder / REVIEW_NAME).read_text())
    assert saved["marked"] == [group["group_id"]] and saved["keepers"] == {str(group["group_id"]): _other_member(group)}
    assert saved["run"] == client.get("/api/duplicates/review", params={"collection": COLLECTION}).json()["run"]
    assert sorted(p.name for p in folder.iterdir() if "review" in p.name) == [REVIEW_NAME]  # no temp file left

    unmarked = _put(client, {"group_id": group["group_id"], "marked": False}).json()
    assert unmarked["marked"] == [] and unmarked["keepers"] == {str(group["group_id"]): _other_member(group)}
    cleared = client.delete("/api/duplicates/review", params={"collection": COLLECTION}).json()
    assert cleared["marked"] == [] and cleared["keepers"] == {}


def test_a_run_computed_again_does_not_inherit_the_old_marks(fresh: Fresh) -> None:
    planted, client = fresh
    [group] = _page(client, 1)["groups"]
    _put(client, {"group_id": group["group_id"], "marked": True})
    groups_file = planted.runs / "dedup" / COLLECTION / "groups.parquet"
    later = groups_file.stat().st_mtime_ns + 5 * 10**9
    os.utime(groups_file, ns=(later, later))  # as a new run written into the same folder
    assert _page(client, 1)["marked"] == 0 and not _page(client, 1)["groups"][0]["marked"]
    assert client.get("/api/duplicates/review", params={"collection": COLLECTION}).json()["marked"] == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"group_id": 99, "marked": True}, "no group 99"),
        ({"group_id": None, "marked": True, "keeper": "/etc/passwd"}, "not one of its files"),
    ],
)
def test_bad_review_changes_are_refused(fresh: Fresh, change: dict[str, Any], says: str) -> None:
    planted, client = fresh
    if change["group_id"] is None:
        change = {**change, "group_id": _page(client, 1)["groups"][0]["group_id"]}
    answer = _put(client, change)
    assert answer.status_code == 422 and says in answer.json()["error"], answer.text
    assert not (planted.runs / "dedup" / COLLECTION / REVIEW_NAME).exists()


def test_the_review_of_a_collection_without_a_run_is_404(client: Any) -> None:
    answer = client.get("/api/duplicates/review", params={"collection": COLLECTION})
    assert answer.status_code == 404 and "compute one first" in answer.json()["error"]
