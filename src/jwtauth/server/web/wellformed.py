"""Requests whose bytes are what they seem (issue 13, point 5), checked before any route.

A JSON request body must be I-JSON (RFC 7493), or it is "not valid JSON" and gets 400
``invalid_request`` (API.md):

- UTF-8 only (RFC 8259 section 8.1, RFC 7493 section 2.1). Python's ``json.loads`` on
  bytes guesses UTF-16 and UTF-32 too, so a body that one parser reads as JSON and
  another as garbage (a WAF, a log, a proxy) would reach the routes. A UTF-8 byte order
  mark is refused too: RFC 8259 forbids sending one.
- Every member name once per object (RFC 8259 section 4, RFC 7493 section 2.3). With
  duplicates the meaning depends on the parser (Python keeps the last, others the
  first), so ``{"username": "alice", "username": "admin"}`` could be checked as one user
  and acted on as another; our tokens are refused for the same reason. 400 rather than
  422: there is no single value to validate.
- No lone surrogates (``"\\ud800"``, RFC 7493 section 2.2): they are not text, and no
  database can store them. (Noncharacters such as U+FFFF are accepted: Unicode
  Corrigendum #9 allows them in interchange.)
- No ``NaN``/``Infinity`` and nothing ``json.loads`` refuses otherwise (numbers of
  thousands of digits, nesting deeper than the interpreter's stack): all 400.

U+0000 is valid I-JSON but not storable in PostgreSQL text: the request models refuse it
(422, ``web.models.Text``). A path holding U+0000 (``/auth/sessions/%00``) names nothing
that can exist, so it is 404 here, before any route would send it to the database.

The body is read whole (``BodyLimit`` outside this layer bounds it) and handed on
unchanged; the route parses it again. Bodies of other content types pass untouched, as
FastAPI does not read them as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.message import Message as MimeHeader
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import MalformedRequest, NotFound
from ...starlette import error_response

_SURROGATE = re.compile("[\ud800-\udfff]")


class _Duplicate(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _Duplicate
    return members


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, names included (iterative: no depth limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json_body(body: bytes) -> None:
    """Raise ``MalformedRequest`` unless ``body`` is I-JSON (see the module docstring).
    An empty body passes: the route decides whether it needs one."""
    if not body:
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("The request body is not UTF-8 JSON.") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_unique_members, parse_constant=_refuse_constant
        )
    except _Duplicate:
        raise MalformedRequest("A member name appears twice in one object.") from None
    except (ValueError, RecursionError):
        raise MalformedRequest() from None
    if any(_SURROGATE.search(string) for string in _strings(value)):
        raise MalformedRequest("The request body holds a lone surrogate (not text).")


def is_json_request(headers: Headers) -> bool:
    """Whether the routes will parse this body as JSON (FastAPI's own rule)."""
    content_type = headers.get("content-type")
    if not content_type:
        return True
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


class WellFormed:
    """Pure ASGI middleware: 404 for a path with U+0000; 400 for a JSON body that is
    not I-JSON. Installed inside ``BodyLimit``, which bounds what is read here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await error_response(NotFound())(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not has_body(headers) or not is_json_request(headers):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if messages[-1]["type"] == "http.request":
            try:
                check_json_body(b"".join(m.get("body", b"") for m in messages))
            except MalformedRequest as exc:
                await error_response(exc)(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


__all__ = ["WellFormed", "check_json_body", "is_json_request"]
