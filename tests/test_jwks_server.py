"""API.md "Library": ``Verifier.from_jwks_url`` against a real jwtauth server process (the
cache's rules are tests/library/test_jwks.py, against a key server the tests control)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from jwtauth import InvalidToken, Verifier

from conftest import PASSWORD, LiveProcess


async def test_from_jwks_url_verifies_a_token_the_running_server_issued(
    live_server: LiveProcess,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        name = "jwks_" + uuid.uuid4().hex[:8]
        registered = await client.post(
            "/auth/register", json={"username": name, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    verifier = Verifier.from_jwks_url(
        f"{live_server.url}/.well-known/jwks.json", issuer=live_server.url, audience="jwtauth")
    try:
        claims = await verifier.verify(token)
        assert claims.sub == registered.json()["id"]
        assert claims.roles == ("user",)
        assert claims.raw["preferred_username"] == name
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))
        assert caught.value.reason == "bad signature"
    finally:
        await verifier.aclose()
