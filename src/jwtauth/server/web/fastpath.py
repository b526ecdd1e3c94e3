"""A thin ASGI route for the hottest requests: GET /users/me and GET /auth/check.

Every authenticated request pays for routing, dependency injection and response models
when it goes through FastAPI; these two answer from the token alone, so they are served
here with the same verifier and the same bytes. Only the success case is handled: any
request this path does not fully accept (no or bad token, other methods, revoked...) is
passed to the full application, which answers it as always, errors included.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ...bearer import parse_authorization
from ...claims import Claims
from ...errors import InvalidToken
from ...verifier import Verifier


def profile(claims: Claims) -> dict[str, Any]:
    """The body of GET /users/me (also used by the FastAPI route)."""
    return {
        "id": claims.sub,
        "username": claims.username,
        "roles": list(claims.roles),
        "session_id": claims.sid,
    }


def check_headers(claims: Claims) -> list[tuple[bytes, bytes]]:
    """The forward-auth headers of GET /auth/check (also used by the FastAPI route)."""
    return [
        (b"x-auth-user-id", claims.sub.encode()),
        (b"x-auth-roles", ",".join(claims.roles).encode()),
        (b"x-auth-username", (claims.username or "").encode()),
    ]


_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")


class FastPath:
    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path == "/users/me" or path == "/auth/check":
                claims = await self._claims(scope)
                if claims is not None:
                    await self._answer(path, claims, send)
                    return
        await self.app(scope, receive, send)

    async def _claims(self, scope: Scope) -> Claims | None:
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        try:
            return await self.verifier.verify(parse_authorization(values))
        except InvalidToken:
            return None

    @staticmethod
    async def _answer(path: str, claims: Claims, send: Send) -> None:
        if path == "/users/me":
            body = json.dumps(profile(claims), separators=(",", ":")).encode()
            headers = [_JSON, _NO_STORE, (b"content-length", str(len(body)).encode())]
            status = 200
        else:
            body = b""
            headers = [*check_headers(claims), _NO_STORE]
            status = 204
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
