"""Routes of API.md "Discovery": JWKS, OpenID configuration, health.

The two ``/.well-known/`` documents are public and cacheable, so they depend on nothing in
the request (no Host, no forwarded headers) and send no ``Vary``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..service import AuthService

JWKS_MAX_AGE = 300


def discovery_router(service: AuthService) -> APIRouter:
    router = APIRouter(tags=["discovery"])

    @router.get("/.well-known/jwks.json")
    async def jwks(request: Request) -> Response:
        keyring = service.keyring
        headers = {
            "Cache-Control": f"public, max-age={JWKS_MAX_AGE}",
            "ETag": keyring.etag,
        }
        if request.headers.get("if-none-match") == keyring.etag:
            return Response(status_code=304, headers=headers)
        return JSONResponse(keyring.jwks, headers=headers)

    @router.get("/.well-known/openid-configuration")
    async def openid_configuration() -> Response:
        issuer = service.issuer_url
        # Never from the request: a forged Host would put an attacker's jwks_uri into a
        # document any cache in front may keep and hand to every client (Cache-Control:
        # public). The public URL if set, else the issuer (configured, or recorded by the
        # first server on this database): the same answer whatever was asked.
        base = service.settings.public_url or issuer
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "token_endpoint": f"{base}/auth/login",
                "id_token_signing_alg_values_supported": [service.settings.algorithm],
                "token_endpoint_auth_methods_supported": ["none"],
                "grant_types_supported": ["password", "refresh_token"],
                "revocation_endpoint": f"{base}/auth/logout",
            },
            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
        )

    @router.get("/healthz")
    async def healthz() -> Response:
        if await service.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse(
            {
                "status": "unavailable",
                "error": "unavailable",
                "message": "The store does not answer.",
            },
            status_code=503,
        )

    return router
