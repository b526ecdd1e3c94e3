"""Bounds on what one request can make the server hold, checked before the app reads
anything (STYLE: bound untrusted input before parsing it).

Why here and not in the HTTP server: uvicorn's httptools parser (the one uvicorn[standard]
runs) takes request headers of any size (1 MB of headers get a 200), and no uvicorn
parser bounds a body. A proxy in front may have its own limits; these hold without one.

- ``HeaderLimit``: request line plus headers over ``max_bytes`` get 431 (RFC 6585).
- ``BodyLimit``: a ``Content-Length`` over ``max_bytes`` gets 413 at once; a body without
  one (chunked) is counted as it streams in and cut off with 413 the moment it passes.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import AuthError, HeadersTooLarge, MalformedRequest, RequestTooLarge
from ...http import error_parts

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 16 * 1024


async def send_error(send: Send, error: AuthError) -> None:
    """Answer with the JSON error of web.errors, from plain ASGI, and close the
    connection: the rest of an oversized request is not worth reading."""
    status, body, headers = error_parts(error)
    content = json.dumps(body).encode()
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    raw += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def header_bytes(scope: Scope) -> int:
    """The size of the request line and headers, as they were on the wire (about)."""
    path = scope.get("raw_path") or scope["path"].encode()
    size = len(scope["method"]) + len(path) + len(scope.get("query_string", b"")) + 12
    return size + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


class HeaderLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header_bytes(scope) > self.max_bytes:
            await send_error(send, HeadersTooLarge(
                f"The request line and headers are over {self.max_bytes} bytes."))
            return
        await self.app(scope, receive, send)


def declared_length(scope: Scope) -> int | None:
    """The Content-Length, None without one; ``MalformedRequest`` for a bad one."""
    values = {value for name, value in scope["headers"] if name == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        # RFC 9110 section 8.6: differing or invalid lengths make the framing unknowable.
        raise MalformedRequest("The Content-Length header is not valid.")
    return int(next(iter(values)))


class _CountedBody:
    """One request's receive and send, counting the body as it arrives."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.received = 0
        self.cut_off = False
        self.response_started = False
        self.answered = False

    async def receive(self) -> Message:
        if self.cut_off:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.cut_off = True
                if not self.response_started:
                    self.answered = True
                    await send_error(self._send, RequestTooLarge(
                        f"The request body is over {self.max_bytes} bytes."))
                # The app sees a client that went away, and stops reading.
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the app's answer to a body it never got whole; ours went out
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = declared_length(scope)
        except MalformedRequest as exc:
            await send_error(send, exc)
            return
        if declared is not None and declared > self.max_bytes:
            await send_error(send, RequestTooLarge(
                f"The request body is over {self.max_bytes} bytes."))
            return
        body = _CountedBody(receive, send, self.max_bytes)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.answered:
                raise
            # The app failed on the body we cut off; the client has its 413 already.
