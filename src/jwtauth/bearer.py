"""Reading the bearer token of a request (RFC 6750 section 2.1), with no framework.

Only the ``Authorization`` header is read, never a query string or form field: URLs end
up in logs and Referer headers (RFC 6750 section 5.3). Every web adapter (the FastAPI
dependencies, the Starlette middleware) calls ``parse_authorization`` so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidToken, MissingToken


def parse_authorization(values: Sequence[str]) -> str:
    """The token of the one ``Authorization: Bearer`` header among ``values``.

    ``MissingToken`` when there is no bearer credential at all (RFC 6750 section 3.1: no
    error code then), ``InvalidToken`` when one is present but unusable.
    """
    if not values:
        raise MissingToken()
    if len(values) > 1:
        raise InvalidToken("several Authorization headers")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken()
    token = token.strip()
    if not token or " " in token:
        raise InvalidToken("malformed Authorization header")
    return token


__all__ = ["parse_authorization"]
