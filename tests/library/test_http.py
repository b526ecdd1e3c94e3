"""Reading the bearer token (RFC 6750 section 2.1) and the one mapping from an error to
HTTP status, body and headers (``jwtauth.http``), with no framework involved."""

from __future__ import annotations

import pytest

from jwtauth import errors
from jwtauth.bearer import parse_authorization
from jwtauth.http import error_parts

TOKEN = "eyJ.eyJ.sig"


@pytest.mark.parametrize(("values", "expected"), [
    ([f"Bearer {TOKEN}"], TOKEN), ([f"bearer {TOKEN}"], TOKEN), ([f"BEARER  {TOKEN} "], TOKEN),
])
def test_the_one_bearer_header_gives_its_token(values: list[str], expected: str) -> None:
    assert parse_authorization(values) == expected


@pytest.mark.parametrize("values", [[], ["Basic dXNlcjpwdw=="], ["Token abc"], [TOKEN]])
def test_no_bearer_credential_is_a_missing_token(values: list[str]) -> None:
    # RFC 6750 section 3.1: a request without credentials gets a challenge with no error.
    with pytest.raises(errors.MissingToken):
        parse_authorization(values)


@pytest.mark.parametrize("values", [
    [f"Bearer {TOKEN}", f"Bearer {TOKEN}"], ["Bearer "], ["Bearer"], ["Bearer a b"],
])
def test_an_unusable_bearer_credential_is_an_invalid_token(values: list[str]) -> None:
    with pytest.raises(errors.InvalidToken) as caught:
        parse_authorization(values)
    assert type(caught.value) is errors.InvalidToken


@pytest.mark.parametrize(("error", "status", "challenge"), [
    (errors.MissingToken(), 401, 'Bearer realm="jwtauth"'),
    (errors.InvalidToken("bad signature"), 401,
     'Bearer realm="jwtauth", error="invalid_token", '
     'error_description="The access token is missing, invalid or expired."'),
    (errors.InsufficientRole(), 403, 'Bearer realm="jwtauth", error="insufficient_scope"'),
    (errors.InsufficientScope(("a", "b:c")), 403,
     'Bearer realm="jwtauth", error="insufficient_scope", scope="a b:c"'),
    (errors.InsufficientScope(), 403, 'Bearer realm="jwtauth", error="insufficient_scope"'),
])
def test_token_refusals_carry_the_rfc_6750_challenge_and_no_store(
    error: errors.AuthError, status: int, challenge: str
) -> None:
    got_status, body, headers = error_parts(error)
    assert got_status == status
    assert body == {"error": error.code, "message": error.message}
    assert headers == {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}


def test_the_reason_a_token_failed_never_leaves_the_process() -> None:
    _, body, headers = error_parts(errors.InvalidToken("revoked"))
    assert "revoked" not in repr(body) + repr(headers)


@pytest.mark.parametrize(("error", "status"), [
    (errors.MalformedRequest(), 400), (errors.RequestTooLarge(), 413),
    (errors.HeadersTooLarge(), 431), (errors.InvalidInput("x"), 422),
    (errors.InvalidCredentials(), 401), (errors.WrongPassword(), 403),
    (errors.InvalidGrant(), 401), (errors.Forbidden(), 403), (errors.NotFound(), 404),
    (errors.MethodNotAllowed(), 405), (errors.Conflict(), 409), (errors.RateLimited(3), 429),
    (errors.Unavailable(), 503), (errors.ConfigError("secret"), 500),
])
def test_every_error_has_its_status_and_an_error_message_body(
    error: errors.AuthError, status: int
) -> None:
    got_status, body, headers = error_parts(error)
    assert got_status == status
    if status == 500:  # nothing of what went wrong is told
        assert body == {"error": "internal_error", "message": "Internal server error."}
    else:
        assert body == {"error": error.code, "message": error.message}
    if isinstance(error, errors.RateLimited):
        assert headers == {"Retry-After": "3"}


def test_a_field_in_error_is_named() -> None:
    assert error_parts(errors.InvalidInput("too short", field="password"))[1] == {
        "error": "invalid_request", "message": "too short", "field": "password"}
