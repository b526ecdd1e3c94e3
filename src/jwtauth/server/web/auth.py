"""Routes of API.md "Accounts": register, login, refresh, logout, sessions, password,
/users/me and the forward-auth check."""


from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ...claims import Claims
from ...errors import Forbidden, InvalidGrant, InvalidToken, MissingToken
from ...fastapi import bearer_token, current_claims
from ...verifier import Verifier
from ..service import AuthService, ClientInfo, TokenPair
from . import browser
from .fastpath import check_headers, profile
from .models import (
    ErrorOut,
    LoginIn,
    PasswordIn,
    RefreshIn,
    RegisterIn,
    SessionOut,
    TokenOut,
    UserOut,
)

_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 429)}


def client_info(request: Request) -> ClientInfo:
    address = request.client.host if request.client else "unknown"
    return ClientInfo(address=address, user_agent=request.headers.get("user-agent"))


def _token_response(
    service: AuthService, pair: TokenPair, *, body_token: bool, cookie: bool
) -> Response:
    body: dict[str, object] = {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }
    if body_token:
        body["refresh_token"] = pair.refresh_token
    response = JSONResponse(body)
    if cookie:
        browser.set_refresh_cookie(
            response, pair.refresh_token, pair.refresh_expires_in, service.settings
        )
    browser.no_store(response)
    return response


def auth_router(service: AuthService, verifier: Verifier) -> APIRouter:
    router = APIRouter(responses=_ERRORS)  # type: ignore[arg-type]
    claims_of = current_claims(verifier)
    CurrentClaims = Annotated[Claims, Depends(claims_of)]

    @router.post("/auth/register", status_code=201, response_model=UserOut, tags=["accounts"])
    async def register(body: RegisterIn, request: Request) -> UserOut:
        user = await service.register(
            body.username, body.password, email=body.email, client=client_info(request)
        )
        return UserOut(id=user.id, username=user.username, roles=user.roles)

    @router.post("/auth/login", response_model=TokenOut, tags=["accounts"])
    async def login(body: LoginIn, request: Request) -> Response:
        pair = await service.login(body.username, body.password, client_info(request))
        return _token_response(service, pair, body_token=True, cookie=True)

    @router.post("/auth/refresh", response_model=TokenOut, tags=["accounts"])
    async def refresh(request: Request, body: RefreshIn | None = None) -> Response:
        if body is not None and body.refresh_token:
            pair = await service.refresh(body.refresh_token, client_info(request))
            return _token_response(service, pair, body_token=True, cookie=False)
        cookie = request.cookies.get(browser.COOKIE)
        if not cookie:
            raise InvalidGrant("no refresh token")
        if not browser.is_allowed_origin(request, service.settings):
            raise Forbidden("Cross-origin refresh is not allowed.")
        pair = await service.refresh(cookie, client_info(request))
        return _token_response(service, pair, body_token=False, cookie=True)

    @router.post("/auth/logout", status_code=204, tags=["accounts"])
    async def logout(request: Request, body: RefreshIn | None = None) -> Response:
        claims: Claims | None = None
        failure: InvalidToken | None = None
        if request.headers.get("authorization"):
            try:
                claims = verifier.verify_sync(bearer_token(request))
            except InvalidToken as exc:
                failure = exc
        refresh_token = body.refresh_token if body is not None else None
        from_cookie = request.cookies.get(browser.COOKIE)
        if from_cookie and not refresh_token:
            if not browser.is_allowed_origin(request, service.settings):
                raise Forbidden("Cross-origin logout is not allowed.")
            refresh_token = from_cookie
        if claims is None and not refresh_token:
            raise failure or MissingToken()
        try:
            await service.logout(claims, refresh_token, client_info(request))
        except InvalidGrant:
            if failure is not None:
                raise failure from None
            raise
        response = Response(status_code=204)
        browser.clear_refresh_cookie(response, service.settings)
        browser.no_store(response)
        return response

    @router.post("/auth/logout-all", status_code=204, tags=["accounts"])
    async def logout_all(claims: CurrentClaims, request: Request) -> Response:
        await service.logout_all(claims, client_info(request))
        response = Response(status_code=204)
        browser.clear_refresh_cookie(response, service.settings)
        browser.no_store(response)
        return response

    @router.get("/auth/sessions", response_model=list[SessionOut], tags=["sessions"])
    async def sessions(claims: CurrentClaims, response: Response) -> list[SessionOut]:
        response.headers["Cache-Control"] = "no-store"  # user data (RFC 9111 section 5.2.2.5)
        return [
            SessionOut(
                id=s.id,
                created_at=s.created_at.isoformat(),
                last_used_at=s.last_used_at.isoformat(),
                user_agent=s.user_agent,
                current=s.id == claims.sid,
            )
            for s in await service.list_sessions(claims)
        ]

    @router.delete("/auth/sessions/{session_id}", status_code=204, tags=["sessions"])
    async def end_session(session_id: str, claims: CurrentClaims, request: Request) -> Response:
        await service.end_session(claims, session_id, client_info(request))
        return Response(status_code=204)

    @router.post("/auth/password", status_code=204, tags=["accounts"])
    async def change_password(
        body: PasswordIn, claims: CurrentClaims, request: Request
    ) -> Response:
        await service.change_password(
            claims, body.current_password, body.new_password, client_info(request)
        )
        return Response(status_code=204)

    @router.get("/users/me", response_model=UserOut, tags=["accounts"])
    async def me(claims: CurrentClaims) -> Response:
        # Normally answered by web.fastpath; this route serves what it passes on.
        return JSONResponse(profile(claims), headers={"Cache-Control": "no-store"})

    @router.get("/auth/check", status_code=204, tags=["forward-auth"])
    async def check(claims: CurrentClaims) -> Response:
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        response.raw_headers.extend(check_headers(claims))
        return response

    return router
