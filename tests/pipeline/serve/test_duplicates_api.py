"""Duplicate review through the API: compute a run, page through it (lazily, 100k groups), change a keeper, plan and
apply moves with the CLI's own safe code, and undo them with `lookalike dedup --undo`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, Planted
from typer.testing import CliRunner

from cli import app as cli_app
from pipeline.core.config import signing_key_path
from pipeline.core.signing import SigningKey, read_signed
from pipeline.serve.duplicates import read_page, read_run


def _group_with(client: Any, name: str) -> dict[str, Any]:
    for page in (1, 2):
        for group in client.get("/api/duplicates", params={"collection": COLLECTION, "page": page}).json()["groups"]:
            if any(Path(m["path"]).name == name for m in group["members"]):
                return dict(group)
    raise AssertionError(f"no group holds {name}")


def test_groups_come_a_page_at_a_time(fresh: tuple[Planted, Any]) -> None:
    _, client = fresh
    first = client.get("/api/duplicates", params={"collection": COLLECTION}).json()
    second = client.get("/api/duplicates", params={"collection": COLLECTION, "page": 2}).json()
    assert first["pages"] == second["pages"] == 2 and first["run"]["groups"] == 2 and first["run"]["threshold"] == 0.9
    assert [len(p["groups"]) for p in (first, second)] == [1, 1]
    assert first["groups"][0]["group_id"] != second["groups"][0]["group_id"]
    members = first["groups"][0]["members"]
    assert members[0]["keeper"] and members[0]["tier"] == "keeper" and all(m["exists"] for m in members)
    assert members[0]["thumb"].startswith(f"/thumb/{COLLECTION}/")
    page = client.get("/duplicates", params={"collection": COLLECTION, "page": 2})
    assert page.status_code == 200 and "page 2 of 2" in page.text and 'rel="prev"' in page.text


def test_a_collection_without_a_run_says_so(client: Any) -> None:
    body = client.get("/api/duplicates", params={"collection": COLLECTION}).json()
    assert body["run"] is None and body["groups"] == []
    assert 'id="no-run"' in client.get("/duplicates").text


def test_a_page_of_100k_groups_reads_only_its_rows(tmp_path: Path) -> None:
    n = 100_000
    group = np.repeat(np.arange(1, n + 1), 2)
    keeper = np.tile([True, False], n)
    frame = pl.DataFrame(
        {
            "group_id": group,
            "point_id": [f"p{g}" for g in group],
            "path": [f"/photos/{g}-{int(k)}.jpg" for g, k in zip(group, keeper, strict=True)],
            "keeper": keeper,
            "tier": np.where(keeper, "keeper", "exact"),
            "score": np.ones(2 * n),
            "width": np.full(2 * n, 10),
            "height": np.full(2 * n, 10),
            "bytes": np.full(2 * n, 100),
            "sha256": ["0" * 64] * (2 * n),
            "changed": np.zeros(2 * n, dtype=bool),
        }
    )
    frame.write_parquet(tmp_path / "groups.parquet", row_group_size=10_000)
    run = read_run(tmp_path, "c")
    assert run is not None and (run.groups, run.files) == (n, 2 * n)
    page = read_page(tmp_path, 2000, 50)
    assert (page.page, page.pages) == (2000, 2000)
    assert [g[0].group_id for g in page.groups] == list(range(99_951, 100_001))
    assert all(g[0].keeper and len(g) == 2 for g in page.groups)
    assert read_page(tmp_path, 10**6, 50).page == 2000  # past the end: the last page


def test_plan_moves_touches_nothing(fresh: tuple[Planted, Any]) -> None:
    planted, client = fresh
    group = _group_with(client, "img0_small.jpg")
    keeper = next(m["path"] for m in group["members"] if m["keeper"])
    body = {"collection": COLLECTION, "groups": [{"group_id": group["group_id"], "keeper": keeper}]}
    plan = client.post("/api/duplicates/plan", json=body).json()
    assert plan["counts"] == {"planned": 1} and plan["manifest"] is None and plan["undo"] is None
    assert Path(plan["moves"][0]["original"]).name == "img0_small.jpg"
    assert planted.paths["near"].is_file() and not Path(plan["move_to"]).exists()


def test_a_changed_keeper_is_applied_signed_and_undone(fresh: tuple[Planted, Any]) -> None:
    planted, client = fresh
    group = _group_with(client, "img0_small.jpg")
    assert Path(next(m["path"] for m in group["members"] if m["keeper"])).name == "img0.png"  # suggested: the larger
    body = {"collection": COLLECTION, "groups": [{"group_id": group["group_id"], "keeper": str(planted.paths["near"])}]}
    applied = client.post("/api/duplicates/apply", json=body)
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert result["counts"] == {"moved": 1}
    [move] = result["moves"]
    assert move["original"] == str(planted.paths["img0"]) and Path(move["moved_to"]).is_file()
    assert not planted.paths["img0"].exists() and planted.paths["near"].is_file()  # the chosen keeper stays
    manifest = Path(result["manifest"])
    assert manifest.parent == planted.runs / "dedup" / COLLECTION / "moved"
    assert b"moved" in read_signed(manifest, SigningKey.load(signing_key_path()))  # signed with the CLI's key
    assert result["undo"] == f"lookalike dedup --undo {shlex.quote(str(manifest))}"
    shown = _group_with(client, "img0.png")
    assert not next(m for m in shown["members"] if Path(m["path"]).name == "img0.png")["exists"]
    pages = [client.get("/duplicates", params={"collection": COLLECTION, "page": p}).text for p in (1, 2)]
    assert sum(page.count("not at this path any more") for page in pages) == 1  # no broken thumbnail for it

    undone = CliRunner().invoke(cli_app, shlex.split(result["undo"])[1:])
    assert undone.exit_code == 0 and "restored 1" in undone.output, undone.output
    assert planted.paths["img0"].is_file()


@pytest.mark.parametrize(
    ("groups", "status", "says"),
    [
        ([{"group_id": 1, "keeper": "/etc/passwd"}], 422, "not one of its files"),
        ([{"group_id": 99, "keeper": "x"}], 422, "no group 99"),
        ([], 422, "groups"),
        ([{"group_id": 1, "keeper": "x"}, {"group_id": 1, "keeper": "y"}], 422, "twice"),
    ],
)
def test_bad_move_requests_are_refused_and_move_nothing(
    fresh: tuple[Planted, Any], groups: list[dict[str, Any]], status: int, says: str
) -> None:
    planted, client = fresh
    response = client.post("/api/duplicates/apply", json={"collection": COLLECTION, "groups": groups})
    assert response.status_code == status and says in response.json()["error"], response.text
    assert all(p.is_file() for p in planted.paths.values())
    assert not (planted.runs / "dedup" / COLLECTION / "moved").exists()


def test_moves_need_a_json_body(fresh: tuple[Planted, Any]) -> None:
    """A cross-site form post (no preflight) cannot move files: the body must be JSON."""
    _, client = fresh
    form = client.post("/api/duplicates/apply", data={"collection": COLLECTION, "groups": "1"})
    assert form.status_code == 422
