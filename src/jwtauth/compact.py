"""Strict reading of a compact JWS's parts (RFC 7515 section 7.1), fast on the common case.

One spelling per token: base64url without padding, whitespace or the standard alphabet,
and with zero unused bits; JSON that is UTF-8, an object, free of NaN/Infinity and of
repeated member names (two parsers may disagree on which duplicate wins).
"""

from __future__ import annotations

import binascii
import functools
import json
from typing import Any

import orjson
import pybase64

from .errors import InvalidToken

_ALLOWED_TYP = frozenset({"at+jwt", "application/at+jwt"})


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise InvalidToken("duplicate member name")
    return members


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259 section 6); Python would read them, and an
    # "exp": Infinity would never expire (or crash the int conversion).
    raise InvalidToken(f"non-JSON constant {name}")


# Built once: json.loads with hooks would build a new decoder for every token.
_JSON = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_reject_constant)


def _parse_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        # UTF-8 only (RFC 8259 section 8.1): no guessing at UTF-16 or UTF-32.
        value = _JSON.decode(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's limit, e.g. [[[[...]]]].
        raise InvalidToken(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"{what} is not an object")
    return value


def parse_payload(data: bytes) -> dict[str, Any]:
    """The claims object, read by orjson when that provably reads it exactly."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    # orjson keeps the last of a repeated name, so a payload with one can never serialise
    # back to itself: equality proves there is none. Whatever orjson would write another
    # way (spaces, escapes, exponents) takes the exact parser, which refuses duplicates.
    if type(value) is dict and orjson.dumps(value) == data:
        return value
    return _parse_object(data, "payload")


# '-' and '_' become the standard alphabet's '+' and '/'; a '+', '/' or '=' in the token
# becomes '!', which strict decoding refuses (RFC 7515 section 2: no padding, URL alphabet).
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
# By padding length, the last characters whose unused low bits are zero: any other would
# decode to the same bytes, so one token would have several spellings.
_CANONICAL_LAST = (b"", b"AEIMQUYcgkosw048", b"AQgw")
_PAD = (b"", b"=", b"==")


def b64url_decode(segment: bytes) -> bytes:
    """Strict base64url: no padding, no whitespace, no standard alphabet, canonical tail."""
    pad = -len(segment) % 4
    if pad and (pad == 3 or segment[-1] not in _CANONICAL_LAST[pad]):
        raise InvalidToken("malformed base64url")
    try:
        # pybase64 (SIMD) decodes a signature in half binascii's time; validate=True
        # refuses every byte outside the alphabet, the '!' above included.
        return pybase64.b64decode(segment.translate(_TO_STANDARD) + _PAD[pad], validate=True)
    except binascii.Error as exc:
        raise InvalidToken("malformed base64url") from exc


@functools.lru_cache(maxsize=256)
def read_header(segment: bytes) -> tuple[str, str]:
    """The (kid, alg) of a header that passes every check not needing the keyring.

    Every token of one key carries the same header, so the result is cached by the
    segment itself; a refused header raises and is never cached.
    """
    header = _parse_object(b64url_decode(segment), "header")
    if "crit" in header or "b64" in header:
        raise InvalidToken("critical header parameters are not supported")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ALLOWED_TYP:
        raise InvalidToken("typ is not at+jwt")
    kid, alg = header.get("kid"), header.get("alg")
    if not isinstance(kid, str):
        raise InvalidToken("unknown kid")
    if not isinstance(alg, str):
        raise InvalidToken("alg does not match the key")
    return kid, alg
