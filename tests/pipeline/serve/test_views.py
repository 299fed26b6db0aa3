"""The HTML views and the collections, reports and map APIs; and `lookalike serve` itself (uvicorn stubbed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, Planted
from typer.testing import CliRunner

from cli import app as cli_app
from pipeline.store import VectorStore


def _report(runs: Path, name: str, collection: str) -> None:
    folder = runs / "eval" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.html").write_text("<html><body>the report</body></html>")
    metrics = {"protocol": "retrieval", "collection": collection, "encoder": "phash", "metrics": {"p_at_1": 0.5}}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_collections_list_counts_encoders_samples_and_reports(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    _report(planted.runs, "retrieval-photos", COLLECTION)
    _report(planted.runs, "other", "elsewhere")
    body = client.get("/api/collections").json()
    assert body["default"] == COLLECTION
    [photos] = body["collections"]
    assert photos["points"] == 7 and photos["index"] == "exact scan" and photos["backend"] == "edge"
    assert [e["encoder"] for e in photos["encoders"]] == ["phash:8"] and photos["encoders"][0]["version"]
    assert len(photos["samples"]) == 7 and client.get(photos["samples"][0]["thumb"]).status_code == 200
    assert [r["name"] for r in photos["reports"]] == ["retrieval-photos"]
    assert [r["name"] for r in client.get("/api/reports").json()["reports"]] == ["other", "retrieval-photos"]
    page = client.get("/collections").text
    assert 'data-collection="photos"' in page and "/reports/retrieval-photos/report.html" in page


def test_eval_reports_are_served_by_name_only(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    _report(planted.runs, "retrieval-photos", COLLECTION)
    (planted.runs / "secret.txt").write_text("not for the web")
    ok = client.get("/reports/retrieval-photos/report.html")
    assert ok.status_code == 200 and "the report" in ok.text
    assert client.get("/reports/retrieval-photos/metrics.json").json()["collection"] == COLLECTION
    for bad in [
        "/reports/retrieval-photos/..%2F..%2Fsecret.txt",
        "/reports/..%2Fsecret.txt/report.html",
        "/reports/../secret.txt",
        "/reports/retrieval-photos/other.html",
        "/reports/nope/report.html",
    ]:
        assert client.get(bad).status_code == 404, bad


def test_the_views_render(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    search = client.get("/")
    assert search.status_code == 200 and 'id="drop"' in search.text and 'id="nav-search" ' not in search.text
    assert "<option selected>photos</option>" in search.text and "/assets/app.js" in search.text
    pid = client.get("/api/collections").json()["collections"][0]["samples"][0]["point_id"]
    by_id = client.get("/", params={"collection": COLLECTION, "id": pid, "k": 3})
    assert by_id.status_code == 200 and by_id.text.count('class="card"') == 3 and pid in by_id.text
    assert client.get("/assets/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/assets/app.css").status_code == 200
    assert client.get("/", params={"id": "../x"}).status_code == 404


def test_html_escapes_what_the_store_holds(client: Any) -> None:
    """Collection names and paths are data, never markup."""
    page = client.get("/", params={"label": '"><script>alert(1)</script>'})
    assert page.status_code == 200 and "<script>alert(1)" not in page.text


def test_the_map_view_and_api(client: Any) -> None:
    body = client.get("/api/map", params={"collection": COLLECTION, "method": "pca"}).json()
    assert body["method"] == "pca" and body["total"] == 7 and len(body["points"]) == 7
    assert all(p["thumb"].startswith(f"/thumb/{COLLECTION}/") for p in body["points"])
    page = client.get("/map", params={"collection": COLLECTION})
    assert page.status_code == 200 and 'class="lk-map"' in page.text and "/thumb/photos/" in page.text
    bad = client.get("/map", params={"collection": COLLECTION, "method": "spiral"})
    assert bad.status_code == 200 and 'id="map-error"' in bad.text and "spiral" in bad.text
    assert client.get("/api/map", params={"collection": COLLECTION, "method": "spiral"}).status_code == 422


def test_serve_command_warns_off_loopback_and_holds_the_store(
    shared: tuple[Planted, VectorStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from conftest import ingest

    planted = ingest(tmp_path / "own")
    started: list[dict[str, Any]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        from fastapi.testclient import TestClient

        kwargs["answer"] = TestClient(app).get("/api/collections", headers={"Host": "127.0.0.1"}).status_code
        started.append(kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = ["serve", "--store", str(planted.store), "-c", COLLECTION, "--device", "cpu", "--port", "8123"]
    local = CliRunner().invoke(cli_app, args)
    assert local.exit_code == 0, local.output
    assert "warning" not in local.output and "phash:8 loaded" in local.output
    assert started[-1] == {
        "host": "127.0.0.1",
        "port": 8123,
        "log_level": "warning",
        "server_header": False,
        "answer": 200,
    }
    exposed = CliRunner().invoke(cli_app, [*args, "--host", "0.0.0.0"])
    assert exposed.exit_code == 0 and started[-1]["host"] == "0.0.0.0"
    [warning] = [line for line in exposed.stderr.splitlines() if line.startswith("warning:")]
    assert "0.0.0.0" in warning and "--token" in warning


def test_serve_refuses_an_unknown_collection_in_one_line(tmp_path: Path) -> None:
    from conftest import ingest

    planted = ingest(tmp_path)
    result = CliRunner().invoke(cli_app, ["serve", "--store", str(planted.store), "-c", "nope", "--device", "cpu"])
    assert result.exit_code == 2 and result.stderr.strip().startswith("error:") and "nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_without_the_web_extra_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed: importing it raises ImportError
    result = CliRunner().invoke(cli_app, ["serve", "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "pip install 'lookalike[serve]'" in result.stderr
    assert not (tmp_path / "store").exists()  # refused before the store was opened
