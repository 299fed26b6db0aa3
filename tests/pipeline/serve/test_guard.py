"""Refusals before any route: token (401), body cap (413, before the body is read), Host header (421)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, Planted

from pipeline.serve.guard import RequestGuard
from pipeline.store import VectorStore


def test_a_token_is_required_on_every_request_when_set(client_for: Any) -> None:
    client = client_for(token="s3cret")
    for path in ["/", "/api/collections", "/assets/app.js", f"/thumb/{COLLECTION}/x", "/nowhere"]:
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert "token" in refused.json()["error"] and "\n" not in refused.json()["error"]
    assert client.get("/api/collections", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_browser_gets_in_with_token_in_the_address_once(client_for: Any) -> None:
    client = client_for(token="s3cret")
    assert client.get("/?token=nope", follow_redirects=False).status_code == 401
    entry = client.get("/duplicates?token=s3cret&page=2", follow_redirects=False)
    assert entry.status_code == 303 and entry.headers["location"] == "/duplicates?page=2"  # token out of the address
    cookie = entry.headers["set-cookie"]
    assert "lookalike_token=s3cret" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/collections").status_code == 200  # the client kept the cookie
    client.cookies.clear()
    assert client.get("/api/collections").status_code == 401


def test_an_upload_over_the_cap_is_413(client_for: Any, shared: tuple[Planted, VectorStore]) -> None:
    planted, _ = shared
    client = client_for(max_upload_bytes=2_000)
    data = planted.paths["img0"].read_bytes()
    assert len(data) > 2_000
    response = client.post("/api/search", data={"collection": COLLECTION}, files={"image": ("a.png", data)})
    assert response.status_code == 413 and "upload cap" in response.json()["error"]


class _Body:
    """An ASGI receive that hands out a body in chunks and counts how many were taken."""

    def __init__(self, chunks: int, size: int) -> None:
        self.left = chunks
        self.size = size
        self.taken = 0

    async def __call__(self) -> MutableMapping[str, Any]:
        self.taken += 1
        self.left -= 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}


def _call(guard: RequestGuard, headers: list[tuple[bytes, bytes]], body: _Body) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/search", "query_string": b"", "headers": headers}
    asyncio.run(guard(scope, body, send))
    return sent


async def _reader(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the whole body, then answers 200 (what a route would do)."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_declared_100_mb_body_is_refused_before_a_byte_is_read() -> None:
    guard = RequestGuard(_reader, token=None, max_body=20 * 2**20)
    body = _Body(chunks=1600, size=64 * 1024)  # 100 MiB
    sent = _call(guard, [(b"content-length", str(100 * 2**20).encode())], body)
    assert sent[0]["status"] == 413 and body.taken == 0


def test_a_streamed_body_without_length_stops_at_the_cap() -> None:
    guard = RequestGuard(_reader, token=None, max_body=1_000_000)
    body = _Body(chunks=1600, size=64 * 1024)
    sent = _call(guard, [(b"transfer-encoding", b"chunked")], body)
    assert sent[0]["status"] == 413
    assert body.taken == 16  # 16 × 64 KiB passes 1,000,000 bytes: nothing after that chunk is read


def test_refused_requests_do_not_reach_the_app() -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await _reader(scope, receive, send)

    guard = RequestGuard(app, token="t", max_body=10, allowed_hosts=("127.0.0.1",))
    assert _call(guard, [(b"host", b"evil.example:8000")], _Body(1, 1))[0]["status"] == 421
    assert _call(guard, [(b"host", b"127.0.0.1:8000")], _Body(1, 1))[0]["status"] == 401
    auth = [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer t")]
    assert _call(guard, [*auth, (b"content-length", b"11")], _Body(1, 11))[0]["status"] == 413
    assert reached == []
    assert _call(guard, [*auth, (b"content-length", b"5")], _Body(1, 5))[0]["status"] == 200
    assert reached == ["/api/search"]


def test_a_foreign_host_header_is_refused(client_for: Any) -> None:
    """DNS rebinding: a page on another site that resolves its name to 127.0.0.1 gets nothing."""
    client = client_for(allowed_hosts=("127.0.0.1", "localhost"))
    assert client.get("/api/collections").status_code == 421  # TestClient's Host is "testserver"
    assert client.get("/api/collections", headers={"Host": "localhost:8000"}).status_code == 200
