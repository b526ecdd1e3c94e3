"""The FastAPI application factory: the routes and middleware over the parts that
``wiring.Server`` builds; no decisions."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import AuthError, InvalidInput, MalformedRequest, MethodNotAllowed, NotFound
from ...starlette import error_response, handle_auth_error
from ..blog import blog_router
from ..blog.store import PostStore
from ..config import Settings, load_settings
from ..wiring import Server
from .admin import admin_router
from .auth import auth_router
from .cors import CORS
from .discovery import discovery_router
from .docs import docs_router
from .fastpath import FastPath
from .headers import ErrorBoundary, SecurityHeaders, is_https
from .limits import BodyLimit, HeaderLimit
from .models import RULE_ERROR
from .outage import install_outage_handler
from .page import page_router
from .wellformed import WellFormed

log = logging.getLogger("jwtauth.http")


async def _json_or_empty(request: Request) -> bool:
    body = await request.body()
    if not body.strip():
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors) or not await _json_or_empty(request):
        return error_response(MalformedRequest())
    # Only where and what: pydantic's "input" may hold a password and is never echoed.
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    if first.get("type") == RULE_ERROR:  # a core rule (accounts/rules.py): its own words,
        # the same the command line prints
        return error_response(InvalidInput(str(first.get("msg")), field=where or None))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return error_response(InvalidInput(message, field=where or None))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(NotFound())
    if exc.status_code == 405:
        response = error_response(MethodNotAllowed())
        # RFC 9110 section 15.5.6: a 405 lists the methods the resource does allow.
        response.headers.update(exc.headers or {})
        return response
    if exc.status_code == 400:
        return error_response(MalformedRequest("The request is malformed."))
    return error_response(AuthError())


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    return error_response(AuthError())


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    server = Server(settings or load_settings(), clock=clock)
    settings, service = server.settings, server.service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="jwtauth",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # web/docs.py serves it, with a Content-Security-Policy
        redoc_url=None,
    )
    app.state.service = service
    app.state.server = server  # for the tests, which look inside
    app.add_exception_handler(AuthError, handle_auth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    install_outage_handler(app, server.db.health)  # the store down: 503, logged once
    app.include_router(auth_router(service, server.verifier))
    app.include_router(admin_router(service, server.keys, server.verifier))
    app.include_router(discovery_router(service))
    app.include_router(blog_router(server.verifier, PostStore(server.db.engine)))
    app.include_router(page_router(service))
    app.include_router(docs_router(app.openapi_url or "/openapi.json", app.title))
    # Innermost of the middlewares: the hot routes get every outer layer's headers too.
    app.add_middleware(FastPath, verifier=server.verifier)
    app.add_middleware(WellFormed)  # I-JSON bodies, no U+0000 in paths (inside BodyLimit)
    # Outside the fast path, so oversized requests are refused before any route runs.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderLimit, max_bytes=settings.max_header_bytes)
    # Outermost, in this order: a crash still becomes a JSON 500 that passes through the
    # CORS and security-header layers, and every answer above gets those headers.
    app.add_middleware(ErrorBoundary)
    app.add_middleware(CORS, origins=settings.allowed_origins)
    app.add_middleware(SecurityHeaders, hsts=is_https(settings.public_url))
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (used by ``jwtauth serve --workers N``)."""
    return create_app()
