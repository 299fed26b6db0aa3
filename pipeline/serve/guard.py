"""Refusals before any route runs: a foreign Host header, a missing or wrong token, an oversize body.

One ASGI middleware, outermost, so a refused request reaches no route, reads no body and touches no store. Bodies
are refused on their declared `Content-Length` before a byte is read, and counted while they stream (a chunked body
with no length stops at the cap).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "lookalike_token"


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the cap; an HTTPException so the framework's own body
    parsing passes it through as a 413 rather than "error parsing the body"."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, too_large_message(cap))


def too_large_message(cap: int) -> str:
    return f"request body over the {cap / 2**20:g} MB upload cap (start the server with a larger --max-upload-mb)"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one error shape of the API: `{"error": "<one line>"}`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class RequestGuard:
    """ASGI middleware enforcing the allowed hosts, the token and the body cap (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._host_refusal(headers) or self._token_refusal(scope, headers) or self._length_refusal(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._limited(scope, receive, send)

    def _host_refusal(self, headers: Headers) -> Response | None:
        if not self.allowed_hosts:
            return None
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in self.allowed_hosts:
            return error(421, f"host {host!r} is not served here (the server answers {', '.join(self.allowed_hosts)})")
        return None

    def _token_refusal(self, scope: Scope, headers: Headers) -> Response | None:
        if self.token is None:
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:  # the browser's way in: set the cookie, then drop the token from the address
            if not self._matches(query["token"]):
                return error(401, "wrong token in ?token=: use the one the server was started with")
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, quote(self.token), httponly=True, samesite="strict")
            return response
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else None
        if given is None:
            cookie = cookie_parser(headers.get("cookie", "")).get(TOKEN_COOKIE)
            given = unquote(cookie) if cookie is not None else None
        if given is None:
            return error(401, "this server needs a token: send 'Authorization: Bearer <token>' or open /?token=<token>")
        if not self._matches(given):
            return error(401, "wrong token: use the one the server was started with (--token or LOOKALIKE_SERVE_TOKEN)")
        return None

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token.encode())

    def _length_refusal(self, headers: Headers) -> Response | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not declared.strip().isdigit():
            return error(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > self.max_body:
            return error(413, too_large_message(self.max_body), {"Connection": "close"})
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a `receive` that counts body bytes and stops at the cap."""
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as e:
            if started:
                raise
            await error(413, str(e.detail), {"Connection": "close"})(scope, receive, send)
