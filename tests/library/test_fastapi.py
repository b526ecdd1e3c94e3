"""``jwtauth.fastapi`` in plain FastAPI apps: the guards answer 401/403 with the contract's
body and RFC 6750 ``WWW-Authenticate`` with no set-up at all (no ``install_error_handlers``),
declare the Bearer scheme in the app's OpenAPI document, and check roles and OAuth scopes.
That these answers equal the server's is tests/test_library_integration.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jwtauth import Claims, InsufficientRole, Verifier

from .conftest import needs_extra
from .kit import AUDIENCE, DROP, ISSUER, Clock, key_for, new_key, token

needs_extra("fastapi", "fastapi")

from fastapi import APIRouter, Depends, FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

import jwtauth.fastapi  # noqa: E402
from jwtauth.fastapi import (  # noqa: E402
    AuthHTTPException,
    current_claims,
    current_claims_optional,
    install_error_handlers,
    require_roles,
    require_scopes,
)

KEY = key_for("ES256")
MISSING = {"error": "invalid_token", "message": "An access token is required."}
INVALID = {"error": "invalid_token", "message": "The access token is missing, invalid or expired."}


def service(verifier: Verifier | None = None) -> FastAPI:
    """A protected service as its README would write it: no error handlers installed."""
    verifier = verifier or Verifier.from_keys([KEY.public_jwk()], issuer=ISSUER,
                                              audience=AUDIENCE)
    app = FastAPI()

    @app.get("/me")
    async def me(request: Request, claims: Claims = Depends(current_claims(verifier))
                 ) -> dict[str, Any]:
        assert request.state.claims is claims
        return {"sub": claims.sub, "roles": list(claims.roles)}

    @app.get("/feed")
    async def feed(claims: Claims | None = Depends(current_claims_optional(verifier))
                   ) -> dict[str, Any]:
        return {"sub": claims.sub if claims else None}

    @app.delete("/things/{thing}", dependencies=[Depends(require_roles(verifier, "admin"))])
    async def delete(thing: str) -> dict[str, str]:
        return {"deleted": thing}

    @app.get("/reports", dependencies=[Depends(require_scopes(verifier, "reports:read"))])
    async def reports() -> dict[str, bool]:
        return {"reports": True}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://service.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(service()) as c:
        yield c


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def user(*roles: str) -> str:
    return token(KEY, Clock(), roles=list(roles or ("user",)))


def client_token(scope: str | object) -> str:
    return token(KEY, Clock(), sub="svc-1", sid=DROP, roles=DROP, preferred_username=DROP,
                 client_id="svc-1", scope=scope)


def test_the_module_exports_are_pinned() -> None:
    assert jwtauth.fastapi.__all__ == [
        "AuthHTTPException", "ClaimsGuard", "OptionalClaimsGuard", "bearer_token",
        "current_claims", "current_claims_optional", "install_error_handlers",
        "require_roles", "require_scopes",
    ]


# -- 401/403 with the contract's body, no set-up ----------------------------------------


async def test_no_token_is_401_with_the_contract_body_on_the_apps_very_first_request(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.json() == MISSING
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="jwtauth"'
    assert response.headers["Cache-Control"] == "no-store"


async def test_concurrent_first_refusals_all_get_the_contract_body() -> None:
    async with await client_for(service()) as fresh:
        answers = await asyncio.gather(*(fresh.get("/me") for _ in range(20)))
    assert [(r.status_code, r.json()) for r in answers] == [(401, MISSING)] * 20


@pytest.mark.parametrize("bad", ["not-a-jwt", "stranger", "tampered", "expired", "two"])
async def test_a_bad_token_is_401_invalid_token_with_the_error_in_the_challenge(
    client: httpx.AsyncClient, bad: str
) -> None:
    clock = Clock()
    values = {
        "not-a-jwt": ["Bearer not-a-jwt"],
        "stranger": [f"Bearer {token(new_key('ES256'), clock)}"],
        "tampered": [f"Bearer {user()[:-6]}AAAAAA"],
        "expired": [f"Bearer {token(KEY, clock, exp=int(clock()) - 3600)}"],
        "two": [f"Bearer {user()}"] * 2,
    }[bad]
    response = await client.get("/me", headers=[("Authorization", v) for v in values])
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="jwtauth", error="invalid_token", '
        'error_description="The access token is missing, invalid or expired."')


async def test_a_good_token_reaches_the_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(user("user", "editor")))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "u-1", "roles": ["user", "editor"]}
    assert (await client.get("/health")).json() == {"ok": True}


async def test_require_roles_is_403_insufficient_role_without_the_role(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/things/7", headers=bearer(user("user")))
    assert response.status_code == 403
    assert response.json() == {"error": "insufficient_role",
                               "message": "You do not have the role this needs."}
    assert response.headers["WWW-Authenticate"] == \
        'Bearer realm="jwtauth", error="insufficient_scope"'
    assert (await client.delete("/things/7")).status_code == 401
    assert (await client.delete("/things/7", headers=bearer(user("admin")))).json() == {
        "deleted": "7"}


# -- OAuth scopes -------------------------------------------------------------------------


async def test_require_scopes_admits_a_client_token_with_the_scope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/reports", headers=bearer(client_token("a reports:read")))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("scope", ["reports:write", "reports", "", DROP])
async def test_require_scopes_is_403_insufficient_scope_naming_what_is_needed(
    client: httpx.AsyncClient, scope: object
) -> None:
    response = await client.get("/reports", headers=bearer(client_token(scope)))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="jwtauth", error="insufficient_scope", scope="reports:read"')


async def test_a_user_token_has_no_scope_and_a_client_token_no_role(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/reports", headers=bearer(user("admin")))).status_code == 403
    admin_scope = client_token("admin reports:read")
    assert (await client.delete("/things/7", headers=bearer(admin_scope))).status_code == 403


@pytest.mark.parametrize("scope", ["", "two words", 'quo"te', "back\\slash", "tab\t"])
def test_require_scopes_refuses_what_is_not_a_scope_token(scope: str) -> None:
    verifier = Verifier.from_keys([KEY], issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError):
        require_scopes(verifier, scope)
    with pytest.raises(ValueError):
        require_scopes(verifier)
    with pytest.raises(ValueError):
        require_roles(verifier)


# -- the optional variant ---------------------------------------------------------------


async def test_current_claims_optional_is_none_without_a_token_and_401_with_a_bad_one(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/feed")).json() == {"sub": None}
    assert (await client.get("/feed", headers={"Authorization": "Basic eDp5"})).json() == {
        "sub": None}
    assert (await client.get("/feed", headers=bearer(user()))).json() == {"sub": "u-1"}
    refused = await client.get("/feed", headers=bearer("not-a-jwt"))
    assert (refused.status_code, refused.json()) == (401, INVALID)


# -- OpenAPI: the Bearer scheme on every protected operation -----------------------------


def test_the_openapi_document_declares_the_bearer_scheme_on_protected_operations() -> None:
    document = service().openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token (RFC 9068 at+jwt) from the jwtauth server.",
    }}
    security = {(path, method): operation.get("security")
                for path, item in document["paths"].items()
                for method, operation in item.items()}
    protected = [("/me", "get"), ("/feed", "get"), ("/things/{thing}", "delete"),
                 ("/reports", "get")]
    assert {key: security[key] for key in protected} == {
        key: [{"bearerAuth": []}] for key in protected}
    assert security[("/health", "get")] is None


# -- how the app may take over ----------------------------------------------------------


async def test_an_apps_own_handler_for_the_refusal_wins() -> None:
    app = service()

    @app.exception_handler(AuthHTTPException)
    async def mine(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthHTTPException)
        return JSONResponse({"mine": exc.body["error"]}, status_code=418)

    async with await client_for(app) as c:
        response = await c.get("/me")
    assert (response.status_code, response.json()) == (418, {"mine": "invalid_token"})


async def test_an_apps_generic_http_error_handler_does_not_swallow_the_refusal() -> None:
    app = service()

    @app.exception_handler(StarletteHTTPException)
    async def generic(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal_error"}, status_code=500)

    async with await client_for(app) as c:
        response = await c.get("/me", headers=bearer("not-a-jwt"))
        missing = await c.get("/nowhere")
    assert (response.status_code, response.json()) == (401, INVALID)
    assert missing.status_code == 500  # the app's handler still has everything else


async def test_install_error_handlers_also_renders_the_apps_own_auth_errors() -> None:
    app = service()
    install_error_handlers(app)

    @app.get("/editors-only")
    async def editors() -> None:
        raise InsufficientRole()

    async with await client_for(app) as c:
        assert (await c.get("/me")).json() == MISSING
        response = await c.get("/editors-only")
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_role"


async def test_guards_in_a_router_and_a_mounted_app_answer_the_same() -> None:
    verifier = Verifier.from_keys([KEY.public_jwk()], issuer=ISSUER, audience=AUDIENCE)
    router = APIRouter(dependencies=[Depends(current_claims(verifier))])

    @router.get("/inside")
    async def inside() -> dict[str, bool]:
        return {"inside": True}

    inner = FastAPI()
    inner.include_router(router)
    outer = FastAPI()
    outer.mount("/sub", inner)
    async with await client_for(outer) as c:
        refused = await c.get("/sub/inside")
        admitted = await c.get("/sub/inside", headers=bearer(user()))
    assert (refused.status_code, refused.json()) == (401, MISSING)
    assert admitted.json() == {"inside": True}
