"""Reading ``application/x-www-form-urlencoded`` parameters as RFC 6749 requires:
each at most once (section 3.2: "MUST NOT be included more than once"), bounded."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidRequestError

MAX_VALUE = 16384


def single_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidRequestError(f"{name} is repeated.", field=name)
        if len(value) > MAX_VALUE:
            raise InvalidRequestError(f"{name} is too long.", field=name)
        params[name] = value
    return params
