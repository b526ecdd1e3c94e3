"""Deadlines and a header bound for each connection, in the HTTP server itself (issue 13,
point 3): ``DeadlineProtocol`` is uvicorn's httptools protocol with three additions.

- A request's line and headers must arrive within ``JWTAUTH_HEADER_TIMEOUT`` of the
  connection opening, or of the request's first byte on a kept-alive connection.
- Its body must arrive within ``JWTAUTH_BODY_TIMEOUT`` of the end of its headers.
- The request line and headers are counted as their bytes arrive and refused with 431
  once past ``JWTAUTH_MAX_HEADER_BYTES``, instead of after the parser has held them all.

Why here: uvicorn 0.54 arms its only timer (``timeout_keep_alive``) after a response, so
a connection that never sends, or sends half a request line, half a header or half a
body, stayed open for good (slowloris: a few hundred such sockets exhaust the server's
file descriptors), and httptools keeps buffering a header line of any length until it
ends. A deadline runs from its start and is not renewed by a trickle of bytes.

When a deadline passes: an idle connection (no byte of a new request) is closed
silently, as a keep-alive timeout would; a partial request gets 408 with the API's JSON
error body; a request whose answer has begun is cut. Refusals (408, 431) are written,
the sending side is shut, and what the client still sends is read and dropped for at
most ``LINGER_SECONDS`` or ``LINGER_BYTES``: closing at once with unread data would make
the kernel reset the connection, and the client could lose the answer before reading it.

uvicorn builds protocols itself, in each worker process, from an import string, so the
settings are read from the environment once per process (as ``create_app_from_env``
does), on the first connection.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ...errors import AuthError, HeadersTooLarge, MalformedRequest
from ...http import error_parts
from ..config import load_settings

LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float
    body_timeout: float
    max_header_bytes: int


@functools.cache
def limits_from_env() -> Limits:
    settings = load_settings()
    return Limits(
        header_timeout=float(settings.header_timeout),
        body_timeout=float(settings.body_timeout),
        max_header_bytes=settings.max_header_bytes,
    )


def refusal(status: int, error: AuthError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response with the API's JSON error body, closing the connection."""
    _, body, headers = error_parts(error)
    content = json.dumps(body).encode()
    lines = [STATUS_LINE[status]]
    fields = [*default_headers, *((k.lower().encode(), v.encode()) for k, v in headers.items())]
    fields += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]
    lines += [name + b": " + value + b"\r\n" for name, value in fields]
    return b"".join([*lines, b"\r\n", content])


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
        for name, value in headers
    )


class DeadlineProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http="jwtauth.server.web.deadlines:DeadlineProtocol")``."""

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or limits_from_env()
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True  # between a message's first byte and its headers' end
        self._head_bytes = 0
        self._started = False  # a byte of the current request has arrived
        self._refused = False
        self._dropped = 0

    # -- deadlines ---------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._refused:
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if not self._started and not answering:
            self.transport.close()  # idle: nothing to answer
            return
        self._refuse(408, MalformedRequest("The request did not arrive in time."))

    def _refuse(self, status: int, error: AuthError) -> None:
        """Answer ``status`` and close, lingering (see the module docstring)."""
        self._disarm()
        self._refused = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()  # an answer is on its way: it cannot be replaced
                return
            cycle.disconnected = True  # the app sees a client gone; its answer is dropped
            cycle.message_event.set()
        self.transport.write(refusal(status, error, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # -- uvicorn's protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            if not self.transport.is_closing():
                self._refuse(431, HeadersTooLarge(
                    f"The request line and headers are over "
                    f"{self.limits.max_header_bytes} bytes."
                ))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        if _has_body(self.headers):
            self._arm(self.limits.body_timeout)
        else:  # the common GET: no timer to make and cancel
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        self._started = False
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()


__all__ = ["DeadlineProtocol", "Limits", "limits_from_env", "refusal"]
