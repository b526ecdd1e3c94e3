"""Attacks through the token's shape and where it is carried: base64url, JSON, segments,
size, and places other than the Authorization header. Each a named regression test
against the server and the library's ``Verifier``; see attack_kit.py for the setup."""

from __future__ import annotations

import base64
import json

import pytest

from attack_kit import (
    Target,
    all_routes_refuse,
    b64,
    refused,
    refused_by_verifier,
    signed,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def std_b64(data: bytes) -> str:
    """Base64 with '+', '/' and '=': what RFC 7515 section 2 rules out for a JWS."""
    return base64.b64encode(data).decode()


def json_with_plus_and_slash(target: Target, claims: bool) -> bytes:
    """A header or payload whose standard base64 has '+', '/' and '=' in it."""
    for width in range(64):
        data = (target.claims(pad=">?" * 8 + " " * width) if claims
                else target.header(pad=">?" * 8 + " " * width))
        raw = json.dumps(data).encode()
        if {"+", "/", "="} <= set(std_b64(raw)):
            return raw
    raise AssertionError("no encoding with '+', '/' and '=' found")


# -- base64url ---------------------------------------------------------------------------


@pytest.mark.parametrize("segment", ["header", "payload", "signature"])
async def test_malformed_base64url_refused(target: Target, segment: str) -> None:
    # Signed over exactly the segments sent, so only the encoding is wrong: a decoder that
    # takes the standard alphabet or padding would let two strings be one token.
    header = json_with_plus_and_slash(target, claims=False)
    payload = json_with_plus_and_slash(target, claims=True)
    if segment == "signature":
        good = signed(target.key, b64(header), b64(payload))
        while not {"-", "_"} & set(good.split(".")[2]):  # so the '+' '/' form differs
            payload = json_with_plus_and_slash(target, claims=True)  # a new jti
            good = signed(target.key, b64(header), b64(payload))
        head, body, signature = good.split(".")
        tokens = [f"{head}.{body}.{signature}=", f"{head}.{body}.{signature}==",
                  f"{head}.{body}.{signature.replace('-', '+').replace('_', '/')}",
                  f"{head}.{body}.{signature[:10]} {signature[10:]}"]
        # The last character of a base64 string may carry unused bits: a different
        # character with the same used bits decodes to the same bytes if unchecked.
        tail = signature[-1]
        for other in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
            if other != tail and len(signature) % 4 and _same_bytes(signature, other):
                tokens.append(f"{head}.{body}.{signature[:-1]}{other}")
                break
    else:
        raw = header if segment == "header" else payload
        encoded = b64(raw)
        tokens = [
            signed(target.key, *_segments(header, payload, segment, odd))
            for odd in (std_b64(raw), encoded + "=", encoded[:5] + "\n" + encoded[5:])
        ]
    for token in tokens:
        if "\n" in token:  # no HTTP client sends that in a header; the library must refuse
            await refused_by_verifier(target.verifier, token)
        else:
            await refused(target, token)


def _segments(header: bytes, payload: bytes, which: str, odd: str) -> tuple[str, str]:
    return (odd, b64(payload)) if which == "header" else (b64(header), odd)


def _same_bytes(segment: str, last: str) -> bool:
    def decode(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return decode(segment) == decode(segment[:-1] + last)


# -- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"", b"[]", b'"a string"', b"null", b"42", b"\xff\xfe{}", b'{"alg": "x"',
     b'{"alg": NaN}', b"{'alg': 'ES256'}"],
    ids=repr,
)
@pytest.mark.parametrize("segment", ["header", "payload"])
async def test_non_json_header_or_payload_refused(
    target: Target, segment: str, raw: bytes
) -> None:
    header = json.dumps(target.header()).encode()
    payload = json.dumps(target.claims()).encode()
    parts = (raw, payload) if segment == "header" else (header, raw)
    await refused(target, signed(target.key, b64(parts[0]), b64(parts[1])))


# -- segments ----------------------------------------------------------------------------


async def test_extra_or_missing_segments_refused(target: Target) -> None:
    token = target.forge()
    head, payload, signature = token.split(".")
    jwe_head = b64(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": target.key.kid}).encode())
    for odd in (
        f"{token}.{signature}", f"{token}.", f".{token}",
        f"{head}.{payload}.{signature}.{signature}.x",
        f"{jwe_head}..{b64(bytes(12))}.{payload}.{b64(bytes(16))}",  # JWE-shaped, 5 parts
        f"{head}.{payload}", head, f"{head}..{signature}", f"{head}.{payload}..{signature}",
        json.dumps({"protected": head, "payload": payload, "signature": signature},
                   separators=(",", ":")),  # the JWS JSON serialization
    ):
        await refused(target, odd)


# -- size --------------------------------------------------------------------------------


async def test_oversized_token_refused(target: Target) -> None:
    # Refused on its length alone, before any base64 or JSON work (tokens.MAX_TOKEN_BYTES).
    token = target.forge(target.claims(pad="x" * 7000))
    assert 8192 < len(token) < 12_000
    await refused(target, token)


async def test_token_over_the_header_limit_refused_with_431(es256: Target) -> None:
    token = es256.forge(es256.claims(pad="x" * 20_000))
    for method, path in es256.routes:
        response = await es256.api.client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 431, (method, path, response.text)
        assert response.json()["error"] == "invalid_request"
    await refused_by_verifier(es256.verifier, token)


# -- where the token is carried: the Authorization header, and nowhere else --------------


async def test_token_in_query_string_not_accepted(target: Target) -> None:
    # RFC 6750 section 5.3 / RFC 8725: URLs end up in logs, history and Referer headers.
    good = target.user.access_token
    await all_routes_refuse(target, presented=False, params={"access_token": good})


async def test_token_in_form_body_not_accepted(target: Target) -> None:
    good = target.user.access_token
    for method, path in target.routes_to_attack():
        response = await target.api.client.request(method, path, data={"access_token": good})
        # 401 without a token; or 400 where the route reads a JSON body before its guard.
        expected = {401: "invalid_token", 400: "invalid_request"}
        assert response.status_code in expected, (method, path, response.text)
        assert response.json()["error"] == expected[response.status_code]


async def test_token_in_cookie_not_accepted(target: Target) -> None:
    good = target.user.access_token
    for name in ("access_token", "token", "jwt", "Authorization"):
        await all_routes_refuse(target, presented=False, headers={"Cookie": f"{name}={good}"})


@pytest.mark.parametrize("scheme", ["", "JWT ", "Token ", "Basic ", "Bearer: ", "Bearer\t"])
async def test_token_under_another_scheme_not_accepted(target: Target, scheme: str) -> None:
    good = target.user.access_token
    await all_routes_refuse(target, presented=False, headers={"Authorization": scheme + good})
