"""Search through the API: by upload (embedded now, or the stored vector of an indexed image), by point id, with
payload filters; thumbnails only for indexed points; unknown things are 404, bad input a one-line 4xx."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, Planted, near_copy
from PIL import Image

from pipeline.store import VectorStore


def _upload(client: Any, path: Path, **fields: Any) -> Any:
    with open(path, "rb") as f:
        return client.post("/api/search", data={"collection": COLLECTION, **fields}, files={"image": (path.name, f)})


def _names(body: dict[str, Any]) -> list[str]:
    return [Path(h["path"]).name for h in body["hits"]]


def test_an_uploaded_near_copy_finds_its_original_first(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    query = near_copy(planted.paths["img0"], planted.root.parent / "queries" / "img0_tiny.jpg")
    response = _upload(client, query, k="3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == {"kind": "upload", "name": "img0_tiny.jpg", "point_id": None, "indexed": False}
    assert set(_names(body)[:2]) == {"img0.png", "img0_small.jpg"}  # the planted pair, before any other image
    assert body["hits"][0]["score"] > 0.9 > body["hits"][2]["score"]
    assert body["encoder"] == "phash:8" and len(body["hits"]) == 3


def test_an_indexed_upload_uses_its_stored_vector(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    body = _upload(client, planted.paths["img1"], k="2").json()
    assert body["query"]["indexed"] and body["hits"][0]["point_id"] == body["query"]["point_id"]
    assert body["hits"][0]["score"] == pytest.approx(1.0)


def test_search_by_point_id_and_by_label(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    pid = _upload(client, planted.paths["img0"], k="1").json()["query"]["point_id"]
    body = client.get("/api/search", params={"collection": COLLECTION, "id": pid, "k": 2}).json()
    assert body["query"] == {"kind": "point", "name": str(planted.paths["img0"]), "point_id": pid, "indexed": True}
    assert set(_names(body)) == {"img0.png", "img0_small.jpg"}  # equal hashes: either may come first
    assert {h["thumb"] for h in body["hits"]} >= {f"/thumb/{COLLECTION}/{pid}?px=160"}
    only_sub = client.get("/api/search", params={"collection": COLLECTION, "id": pid, "label": "sub"})
    assert only_sub.status_code == 200 and {h["label"] for h in only_sub.json()["hits"]} == {"sub"}
    assert _names(only_sub.json()) == ["img0_small.jpg"]  # the only point labelled sub (img1's copy is img1's point)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"collection": "nope", "id": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"collection": "..", "id": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"collection": COLLECTION, "id": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"collection": COLLECTION, "id": "../../etc/passwd"}, 404),
        ({"collection": COLLECTION, "id": "00000000-0000-0000-0000-000000000000", "k": 0}, 422),
        ({"collection": COLLECTION, "id": "00000000-0000-0000-0000-000000000000", "k": 10_000}, 422),
    ],
)
def test_unknown_collections_and_points_are_404_bad_values_422(
    client: Any, params: dict[str, Any], status: int
) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == status
    assert list(response.json()) == ["error"] and "\n" not in response.json()["error"]


def test_a_non_image_upload_is_415_in_one_line(client: Any) -> None:
    data = {"collection": COLLECTION}
    response = client.post("/api/search", data=data, files={"image": ("notes.jpg", b"not an image\n")})
    assert response.status_code == 415
    error = response.json()["error"]
    assert "not an image" in error and "\n" not in error
    empty = client.post("/api/search", data=data, files={"image": ("empty.jpg", b"")})
    assert empty.status_code == 415


def test_an_upload_to_an_unknown_collection_is_404(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    with open(planted.paths["img0"], "rb") as f:
        response = client.post("/api/search", data={"collection": "nope"}, files={"image": ("a.png", f)})
    assert response.status_code == 404


def test_thumbnails_are_served_for_indexed_points_only(client: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    pid = _upload(client, planted.paths["img0"], k="1").json()["query"]["point_id"]
    response = client.get(f"/thumb/{COLLECTION}/{pid}", params={"px": 64})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert max(image.size) == 64 and image.size == (64, 48)  # 128×96 fitted in 64 px
    for bad in [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        str(planted.paths["img0"]).replace("/", "%2F"),
        "00000000-0000-0000-0000-000000000000",
    ]:
        refused = client.get(f"/thumb/{COLLECTION}/{bad}")
        assert refused.status_code == 404, bad
        assert refused.headers["content-type"] == "application/json"
    assert client.get(f"/thumb/nope/{pid}").status_code == 404
    assert client.get(f"/thumb/../{pid}").status_code == 404


def test_a_thumbnail_whose_file_is_gone_is_404(tmp_path: Path, client_for: Any) -> None:
    """Not a decode of whatever now sits elsewhere: the point's own files only."""
    from conftest import ingest, make_client, open_store

    from pipeline.serve import ServeSettings

    planted = ingest(tmp_path)
    with open_store(planted) as store:
        client = make_client(store, ServeSettings(runs=planted.runs))
        pid = _upload(client, planted.paths["img3"], k="1").json()["query"]["point_id"]
        planted.paths["img3"].rename(tmp_path / "elsewhere.png")
        response = client.get(f"/thumb/{COLLECTION}/{pid}")
    assert response.status_code == 404 and "gone" in response.json()["error"]


def test_errors_are_json_for_the_api_and_pages_for_the_views(client: Any) -> None:
    page = client.get("/", params={"collection": "nope"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no collection" in page.text
    assert json.loads(client.get("/api/search", params={"collection": "nope", "id": "x"}).text)["error"]
