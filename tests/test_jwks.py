"""API.md "Library": ``Verifier.from_jwks_url`` against a real jwtauth server process, and
the JWKS cache's rules against a small key server on loopback whose answers and request
count the tests control."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64encode

from jwtauth import InvalidToken, Verifier
from jwtauth.keys import SigningKey
from jwtauth.server.keys import generate_key

from conftest import PASSWORD, Clock, LiveProcess

ISSUER = "https://issuer.test"
AUDIENCE = "jwtauth"
MAX_STALE = 600


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
            other = json.dumps([generate_key("ES256").public_jwk()]).encode()
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


@pytest.fixture
def key() -> SigningKey:
    return generate_key("ES256")


@pytest.fixture
def key_server(key: SigningKey) -> Iterator[KeyServer]:
    server = KeyServer()
    server.keys = [key.public_jwk()]
    yield server
    server.stop()


@pytest.fixture
def attacker_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.stop()


VerifierFactory = Callable[..., Awaitable[Verifier]]


@pytest.fixture
async def make_verifier() -> AsyncIterator[VerifierFactory]:
    made: list[Verifier] = []

    async def build(url: str, clock: Clock, **options: Any) -> Verifier:
        options = {"issuer": ISSUER, "audience": AUDIENCE, "max_stale": MAX_STALE, **options}
        verifier = Verifier.from_jwks_url(url, clock=clock, **options)
        made.append(verifier)
        return verifier

    yield build
    for verifier in made:
        await verifier.aclose()


def sign(key: SigningKey, clock: Clock, **header: Any) -> str:
    """An access token as the server makes it, signed by ``key``, with extra header members."""
    now = int(clock())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "42", "sid": "s1", "jti": uuid.uuid4().hex,
              "roles": ["user"], "iat": now, "nbf": now, "exp": now + 3600}
    protected = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header}
    # Framed by hand and signed by the algorithm model: joserfc's serialize_compact warns
    # on the "EdDSA" name, which API.md fixes.
    signing_input = b".".join(
        urlsafe_b64encode(json.dumps(part).encode()) for part in (protected, claims))
    signature = JWSRegistry.algorithms[key.alg].sign(signing_input, key.jwk)
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode()


async def refused(verifier: Verifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.reason


# -- Against a real jwtauth server ------------------------------------------------------


async def test_from_jwks_url_verifies_a_token_the_running_server_issued(
    live_server: LiveProcess, make_verifier: VerifierFactory
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        name = "jwks_" + uuid.uuid4().hex[:8]
        registered = await client.post(
            "/auth/register", json={"username": name, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    verifier = await make_verifier(
        f"{live_server.url}/.well-known/jwks.json", Clock(), issuer=live_server.url)
    claims = await verifier.verify(token)
    assert claims.sub == registered.json()["id"]
    assert claims.roles == ("user",)
    assert claims.raw["preferred_username"] == name
    assert await refused(verifier, token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")) \
        == "bad signature"


# -- Fetching and refetching ------------------------------------------------------------


async def test_concurrent_first_use_fetches_once_and_known_kids_need_no_more_fetches(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    tokens = [sign(key, clock) for _ in range(10)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [claims.sub for claims in results] == ["42"] * 10
    for token in tokens:
        await verifier.verify(token)
    assert key_server.count == 1


async def test_an_unknown_kid_refetches_at_most_once_per_min_refetch_interval(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, min_refetch_interval=5)
    await verifier.verify(sign(key, clock))
    strangers = [sign(generate_key("ES256"), clock) for _ in range(20)]
    assert {await refused(verifier, token) for token in strangers} == {"unknown kid"}
    assert key_server.count == 1  # the first fetch was less than 5 s ago
    clock.advance(5)
    reasons = await asyncio.gather(*(refused(verifier, token) for token in strangers))
    assert set(reasons) == {"unknown kid"}
    assert key_server.count == 2
    clock.advance(4.9)
    assert await refused(verifier, strangers[0]) == "unknown kid"
    assert key_server.count == 2
    clock.advance(0.1)
    assert await refused(verifier, strangers[0]) == "unknown kid"
    assert key_server.count == 3


async def test_concurrent_callers_with_a_newly_published_kid_share_one_refetch(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    new_key = generate_key("EdDSA")
    key_server.keys = [key.public_jwk(), new_key.public_jwk()]
    clock.advance(5)
    tokens = [sign(new_key, clock) for _ in range(10)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [claims.sub for claims in results] == ["42"] * 10
    assert key_server.count == 2
    assert verifier.keyring.kids() == {key.kid, new_key.kid}


async def test_unusable_entries_are_skipped_and_logged_and_the_rest_are_used(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    weak = {"kty": "oct", "alg": "HS256", "kid": "shared", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}
    encryption = {**generate_key("ES256").public_jwk(), "use": "enc"}
    key_server.keys = [weak, encryption, key.public_jwk()]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    with caplog.at_level("WARNING", logger="jwtauth.jwks"):
        assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert verifier.keyring.kids() == {key.kid}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2


async def test_background_refresh_picks_up_new_keys_after_the_refresh_interval(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, refresh_interval=300)
    token = sign(key, clock)
    await verifier.verify(token)
    new_key = generate_key("ES256")
    key_server.keys = [key.public_jwk(), new_key.public_jwk()]
    clock.advance(301)
    await verifier.verify(token)  # answers from memory and wakes the refresher
    for _ in range(200):  # bounded: at most 10 s for the background task
        if new_key.kid in verifier.keyring.kids():
            break
        await asyncio.sleep(0.05)
    assert verifier.keyring.kids() == {key.kid, new_key.kid}
    assert key_server.count == 2


@pytest.mark.parametrize(
    ("cache_control", "interval"),
    [(None, 300), ("public, max-age=60", 60), ("max-age=5", 30), ("max-age=3600", 300),
     ("no-cache", 30)],
)
async def test_the_refresh_interval_follows_a_shorter_max_age_but_not_below_30_s(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory,
    cache_control: str | None, interval: int,
) -> None:
    key_server.cache_control = cache_control
    verifier = await make_verifier(key_server.url, Clock(), refresh_interval=300)
    assert verifier.jwks is not None
    assert await verifier.jwks.start() is True
    assert verifier.jwks.effective_refresh_interval == interval


async def test_an_etag_revalidation_answered_304_keeps_and_renews_the_key_set(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    key_server.etag = '"v1"'
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, max_stale=60)
    token = sign(key, clock)
    await verifier.verify(token)
    version = verifier.keyring.version
    clock.advance(50)
    assert await refused(verifier, sign(generate_key("ES256"), clock)) == "unknown kid"
    assert key_server.count == 2
    assert key_server.requests[1].get("If-None-Match") == '"v1"'
    assert "If-None-Match" not in key_server.requests[0]
    assert verifier.keyring.version == version  # nothing replaced, verified tokens stay cached
    key_server.stop()
    clock.advance(50)  # 100 s after the 200, 50 s after the 304: still within max_stale
    assert (await verifier.verify(token)).sub == "42"


# -- Stale-if-error ---------------------------------------------------------------------


async def test_known_kids_keep_verifying_while_the_key_server_is_down(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    key_server.stop()
    clock.advance(MAX_STALE - 1)
    assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert await refused(verifier, sign(generate_key("ES256"), clock)) == "unknown kid"
    assert verifier.keyring.kids() == {key.kid}


@pytest.mark.parametrize("mode", ["500", "not-json", "no-keys-list", "unusable-keys", "huge"])
async def test_a_bad_answer_from_the_key_server_keeps_the_last_good_key_set(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory, mode: str
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    token = sign(key, clock)
    await verifier.verify(token)
    key_server.mode = mode
    clock.advance(5)
    assert await refused(verifier, sign(generate_key("ES256"), clock)) == "unknown kid"
    assert key_server.count == 2  # the refetch happened and its answer was refused
    assert verifier.keyring.kids() == {key.kid}
    assert (await verifier.verify(token)).sub == "42"


async def test_beyond_max_stale_verification_fails_closed_until_the_keys_come_back(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    token = sign(key, clock)
    await verifier.verify(token)  # now remembered by the verifier's cache too
    key_server.mode = "500"
    clock.advance(MAX_STALE + 1)
    assert await refused(verifier, token) == "keys unavailable"
    with pytest.raises(InvalidToken):
        verifier.verify_sync(token)
    key_server.mode = "ok"
    clock.advance(5)
    assert (await verifier.verify(token)).sub == "42"


async def test_a_key_server_that_never_answered_fails_closed(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    key_server.stop()
    verifier = await make_verifier(key_server.url, Clock())
    assert await refused(verifier, sign(key, Clock())) == "keys unavailable"


# -- Nothing in a token chooses what is fetched -----------------------------------------


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk"])
@pytest.mark.parametrize("kid_known", [True, False], ids=["known-kid", "unknown-kid"])
async def test_a_url_or_key_named_in_the_token_header_is_never_used(
    key: SigningKey, key_server: KeyServer, attacker_server: KeyServer,
    make_verifier: VerifierFactory, member: str, kid_known: bool,
) -> None:
    attacker = generate_key("ES256")
    attacker_server.keys = [attacker.public_jwk()]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    clock.advance(5)
    value: Any = attacker.public_jwk() if member == "jwk" else attacker_server.url
    header = {member: value, "kid": key.kid if kid_known else attacker.kid}
    token = sign(attacker, clock, **header)
    assert await refused(verifier, token) == ("bad signature" if kid_known else "unknown kid")
    assert attacker_server.count == 0
    assert key_server.count == (1 if kid_known else 2)


async def test_a_redirect_from_the_key_server_is_not_followed(
    key: SigningKey, key_server: KeyServer, attacker_server: KeyServer,
    make_verifier: VerifierFactory,
) -> None:
    attacker = generate_key("ES256")
    attacker_server.keys = [attacker.public_jwk()]
    key_server.mode, key_server.redirect_to = "redirect", attacker_server.url
    verifier = await make_verifier(key_server.url, Clock())
    assert await refused(verifier, sign(attacker, Clock())) == "keys unavailable"
    assert attacker_server.count == 0


@pytest.mark.parametrize(("url", "allow_insecure", "accepted"), [
    ("https://keys.example.com/.well-known/jwks.json", False, True),
    ("http://127.0.0.1:8000/jwks.json", False, True),
    ("http://localhost/jwks.json", False, True),
    ("http://[::1]:8000/jwks.json", False, True),
    ("http://keys.example.com/.well-known/jwks.json", False, False),
    ("http://10.0.0.8/jwks.json", False, False),
    ("http://keys.internal/jwks.json", True, True),
    ("ftp://127.0.0.1/jwks.json", True, False),
    ("/.well-known/jwks.json", True, False),
])
def test_a_jwks_url_must_be_https_unless_on_loopback_or_insecure_is_allowed(
    url: str, allow_insecure: bool, accepted: bool
) -> None:
    if not accepted:
        with pytest.raises(ValueError):
            Verifier.from_jwks_url(url, issuer=ISSUER, audience=AUDIENCE,
                                   allow_insecure=allow_insecure)
        return
    verifier = Verifier.from_jwks_url(url, issuer=ISSUER, audience=AUDIENCE,
                                      allow_insecure=allow_insecure)
    assert verifier.jwks is not None and verifier.jwks.fetches == 0  # no I/O until used
