"""What the library's tests share: keys made with joserfc, tokens signed by hand, a clock
and a JWKS endpoint on loopback. Nothing here imports the server or a server dependency:
these tests run in a venv holding the base package alone (``make test-library``).

Tokens are signed by hand (hmac and cryptography directly, not the code under test), so a
forged token is wrong in exactly one way; the server's suites use the same ``sign``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey

from jwtauth.keys import SigningKey, key_from_secret

ISSUER = "https://jwtauth.test"
AUDIENCE = "jwtauth"
TTL = 900
LEEWAY = 30
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]
ASYMMETRIC = ["ES256", "RS256", "EdDSA"]
DROP = object()  # a header or claim value meaning "leave this member out"


class Clock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


_GENERATORS: dict[str, Callable[[], Any]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


def new_key(alg: str) -> SigningKey:
    """A fresh key pair (an HS256 secret) bound to ``alg``, its kid the RFC 7638
    thumbprint, as an issuer would make it."""
    if alg == "HS256":
        return key_from_secret(uuid.uuid4().bytes + uuid.uuid4().bytes)
    jwk = _GENERATORS[alg]()
    return SigningKey(kid=jwk.thumbprint(), alg=alg, jwk=jwk)  # type: ignore[arg-type]


@functools.cache
def key_for(alg: str) -> SigningKey:
    """One key per algorithm for the whole run (RSA keys take a while to make)."""
    return new_key(alg)


def sign(key: SigningKey | bytes, signing_input: bytes) -> bytes:
    """A JWS signature by ``key`` (bytes: an HMAC secret), in the JWS form of RFC 7518."""
    if isinstance(key, bytes):
        return hmac.new(key, signing_input, hashlib.sha256).digest()
    if key.alg == "HS256":
        return hmac.new(key.jwk.raw_value, signing_input, hashlib.sha256).digest()
    private = key.jwk.private_key
    if key.alg == "ES256":
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if key.alg == "RS256":
        return private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return private.sign(signing_input)


def claims_at(clock: Callable[[], float], **changes: Any) -> dict[str, Any]:
    """The claims of a good access token issued now, with ``changes`` (DROP removes one)."""
    now = int(clock())
    claims = {
        "iss": ISSUER, "sub": "u-1", "aud": AUDIENCE, "iat": now, "nbf": now,
        "exp": now + TTL, "jti": uuid.uuid4().hex, "sid": "s-1", "roles": ["user"],
        "preferred_username": "alice", **changes,
    }
    return {name: value for name, value in claims.items() if value is not DROP}


def forge(
    key: SigningKey, payload: dict[str, Any] | bytes, *,
    secret: bytes | None = None, **header_changes: Any,
) -> str:
    """A compact JWS signed with ``key`` (or HMAC over ``secret``) and the given header."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header_changes}
    header = {name: value for name, value in header.items() if value is not DROP}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}".encode()
    signature = sign(key if secret is None else secret, signing_input)
    return f"{signing_input.decode()}.{b64(signature)}"


def token(key: SigningKey, clock: Callable[[], float], **claims: Any) -> str:
    """A good access token by ``key``, with ``claims`` changed."""
    return forge(key, claims_at(clock, **claims))


def public_entry(key: SigningKey) -> SigningKey | dict[str, Any]:
    """What a resource server holds of ``key``: the public JWK, or the HS256 key itself."""
    return key.public_jwk() if key.is_asymmetric else key


class KeyServer:
    """A JWKS endpoint on 127.0.0.1 (a thread): counts requests, answers what it is told."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | 500 | not-json | no-keys-list | unusable-keys | huge | redirect
        self.etag: str | None = None
        self.cache_control: str | None = None
        self.redirect_to = ""
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append({"path": self.path, **dict(self.headers.items())})
                try:
                    server.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the size bound does

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = {
            "ok": json.dumps({"keys": self.keys}).encode(),
            "not-json": b"<html>502 Bad Gateway</html>",
            "no-keys-list": b'{"keys": {"kid": "x"}}',
            "unusable-keys": json.dumps({"keys": [
                {"kty": "oct", "alg": "HS256", "kid": "s", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"},
                {key: value for key, value in self.keys[0].items() if key != "kid"},
            ]}).encode(),
        }.get(self.mode, b"")
        if self.mode == "500":
            handler.send_response(500)
        elif self.mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
        elif self.etag and handler.headers.get("If-None-Match") == self.etag:
            handler.send_response(304)
            handler.send_header("ETag", self.etag)
            handler.end_headers()
            return
        else:
            handler.send_response(200)
            if self.etag:
                handler.send_header("ETag", self.etag)
            if self.cache_control:
                handler.send_header("Cache-Control", self.cache_control)
        handler.send_header("Content-Type", "application/json")
        if self.mode == "huge":  # a good JWKS padded to 4 MiB, with no Content-Length:
            handler.end_headers()  # only the streaming size bound can refuse it
            other = json.dumps([new_key("ES256").public_jwk()]).encode()
            handler.wfile.write(b'{"keys": ' + other + b', "padding": "')
            for _ in range(64):
                handler.wfile.write(b" " * 65536)
            handler.wfile.write(b'"}')
            return
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join(timeout=10)
        self.httpd.server_close()
