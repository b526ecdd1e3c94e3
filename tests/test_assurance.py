"""Assurance (issue 11, point 5): ``amr`` (RFC 8176) and ``acr`` (aal1/aal2) from the
factors a sign-in used, and the RFC 9470 answer ``require_aal`` gives (phase 2 wires
it into the FastAPI and Starlette integrations; here through a tiny Starlette app)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jwtauth.server.mfa.assurance import (
    Factor,
    acr_for,
    amr_for,
    challenge,
    factors_from_amr,
    shortfall,
)

NOW = 1_800_000_000.0
ALLOWED_AMR = {"pwd", "otp", "hwk", "user", "mfa"}


@pytest.mark.parametrize(("factors", "amr", "acr"), [
    ([Factor.PASSWORD], ["pwd"], "aal1"),
    ([Factor.PASSWORD, Factor.TOTP], ["pwd", "otp", "mfa"], "aal2"),
    ([Factor.PASSWORD, Factor.RECOVERY_CODE], ["pwd", "otp", "mfa"], "aal2"),
    ([Factor.PASSKEY_VERIFIED], ["hwk", "user", "mfa"], "aal2"),
    ([Factor.PASSKEY], ["hwk"], "aal1"),
    ([Factor.TOTP], ["otp"], "aal1"),  # one factor, however strong it sounds
    ([Factor.PASSWORD, Factor.PASSWORD], ["pwd"], "aal1"),
])
def test_amr_and_acr(factors: list[Factor], amr: list[str], acr: str) -> None:
    assert amr_for(factors) == amr
    assert set(amr) <= ALLOWED_AMR
    assert acr_for(factors) == acr
    assert acr_for(factors_from_amr(amr)) == acr  # an mfa_token's amr round-trips


def test_shortfall_fails_closed() -> None:
    assert shortfall({"acr": "aal2"}, "aal2", now=NOW) is None
    assert shortfall({"acr": "aal2"}, "aal1", now=NOW) is None
    for claims in ({}, {"acr": "aal1"}, {"acr": "AAL2"}, {"acr": 2}, {"acr": None}):
        found = shortfall(claims, "aal2", now=NOW)
        assert found is not None and found.reason == "acr"
    fresh = {"acr": "aal2", "auth_time": int(NOW) - 100}
    assert shortfall(fresh, "aal2", max_age=300, now=NOW) is None
    for stale in ({"acr": "aal2", "auth_time": int(NOW) - 301}, {"acr": "aal2"},
                  {"acr": "aal2", "auth_time": True}, {"acr": "aal2", "auth_time": "1"}):
        found = shortfall(stale, "aal2", max_age=300, now=NOW)
        assert found is not None and found.reason == "max_age"


def require_aal_app(required: str, max_age: int | None = None) -> Starlette:
    """What phase 2's ``require_aal`` does, on claims already verified (here read from
    a test header standing in for the verifier)."""

    async def protected(request: Request) -> Response:
        import json

        claims: dict[str, Any] = json.loads(request.headers["x-test-claims"])
        found = shortfall(claims, required, max_age=max_age, now=NOW)  # type: ignore[arg-type]
        if found is not None:
            status, body, headers = challenge(found)
            return JSONResponse(body, status_code=status, headers=headers)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/x", protected)])


async def test_rfc_9470_answer() -> None:
    app = require_aal_app("aal2", max_age=600)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://rs.test") as client:
        weak = await client.get("/x", headers={"x-test-claims": '{"acr": "aal1"}'})
        assert weak.status_code == 401
        assert weak.json()["error"] == "insufficient_user_authentication"
        header = weak.headers["www-authenticate"]
        assert header.startswith("Bearer ")
        assert 'error="insufficient_user_authentication"' in header
        assert 'acr_values="aal2"' in header and 'max_age="600"' in header
        ok = await client.get("/x", headers={
            "x-test-claims": f'{{"acr": "aal2", "auth_time": {int(NOW) - 10}}}'})
        assert ok.status_code == 200
        old = await client.get("/x", headers={
            "x-test-claims": f'{{"acr": "aal2", "auth_time": {int(NOW) - 601}}}'})
        assert old.status_code == 401 and "recent" in old.json()["message"]
