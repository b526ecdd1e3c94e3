"""The store going away is a 503, not a 500 (issue 13, point 12).

One exception handler for every route (the service's and the blog's alike): an error of
``store.outage.is_outage`` becomes 503 ``unavailable`` with ``Retry-After`` and is noted
by ``StoreHealth``, which logs the outage once when it starts and once when it ends. The
answer is an ordinary response, so the keep-alive connection stays open, where the
unhandled-exception path answered 500, logged a traceback twice per request and closed
the connection. Any other error re-raises into that path unchanged: a bug stays a 500
with its traceback.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ...errors import Unavailable
from ...starlette import error_response
from ..store.outage import RETRY_AFTER, STORE_ERRORS, StoreHealth, is_outage


def install_outage_handler(app: FastAPI, health: StoreHealth) -> None:
    async def store_unavailable(request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            raise exc
        health.failed(exc)
        return error_response(Unavailable(
            "The store does not answer; try again shortly.", retry_after=RETRY_AFTER
        ))

    for kind in STORE_ERRORS:
        app.add_exception_handler(kind, store_unavailable)


__all__ = ["install_outage_handler"]
