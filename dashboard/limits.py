"""Bounded request bodies, enforced before any route (or FastAPI's body parsing) reads a byte.

FastAPI reads and parses a request's body before it runs the route's dependencies, so authentication cannot
protect memory or disk: the limit has to sit in front, as ASGI middleware. A declared ``Content-Length`` over
the limit is refused at once; a body sent without one (chunked) is counted as it streams and refused the
moment it passes the limit. An unsafe request without a session cookie is refused before its body is read,
except the login form, which gets the smallest limit. No route accepts a file: face photos are added with
``jifang watchlist add`` on the server, not through the dashboard.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_LIMIT = 64 * 1024  # the largest form or JSON body a route takes (camera registration) is under 2 KiB
ANONYMOUS_LIMIT = 8 * 1024  # the login form
ANONYMOUS_UNSAFE_PATHS = frozenset({"/login"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """Raised by the counting ``receive`` inside a route; FastAPI passes HTTPExceptions through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: the limit is {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, session_cookie: str, limit: int = BODY_LIMIT,
                 anonymous_limit: int = ANONYMOUS_LIMIT) -> None:
        self.app = app
        self.session_cookie = session_cookie.encode()
        self.limit = limit
        self.anonymous_limit = anonymous_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        anonymous = self.session_cookie + b"=" not in headers.get(b"cookie", b"")
        if scope["method"] in UNSAFE and anonymous and scope["path"] not in ANONYMOUS_UNSAFE_PATHS:
            await _answer(send, 403, "CSRF token missing or wrong: log in first")  # what the CSRF check says
            return
        limit = self.anonymous_limit if anonymous else self.limit
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _answer(send, 413, f"request body too large: the limit is {limit} bytes")
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:  # raised where no exception handler runs (a middleware reading the body)
            if started:
                raise
            await _answer(send, 413, str(exc.detail))


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
