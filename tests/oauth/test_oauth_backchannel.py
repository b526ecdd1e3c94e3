"""Back-channel logout: the SSRF guard held against oidc-provider's own special-use
address check, logout tokens, and the sender delivering through the outbox to a real
loopback endpoint: once, retried with back-off on 5xx, given up on 4xx."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth_kit import INTEROP, node_tools
from oauth_world import World, loopback_world, register_web

from jwtauth.server.oauth.backchannel import EVENT, BackchannelSender, backoff
from jwtauth.server.oauth.ports import GrantLink
from jwtauth.server.oauth.ssrf import ForbiddenTarget, is_forbidden_address, pin
from jwtauth.server.store.oauth_outbox import LogoutOutbox

from conftest import free_port

__all__ = ["loopback_world"]

ADDRESSES = [
    "0.0.0.0",  # noqa: S104 - an address to classify, not to bind "10.1.2.3", "100.64.0.1", "127.0.0.1", "127.8.9.10", "169.254.169.254",
    "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.1.1", "198.18.0.1",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "8.8.8.8", "93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "11.0.0.1",
    "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "64:ff9b::7f00:1", "64:ff9b::808:808", "::ffff:127.0.0.1", "::ffff:8.8.8.8",
    "2002:7f00:1::1", "2606:4700:4700::1111", "2001:4860:4860::8888",
]


def test_ssrf_guard_agrees_with_oidc_provider() -> None:
    node = node_tools()
    module = (INTEROP / "node_modules/oidc-provider/lib/helpers/fetch_request.js").as_uri()
    script = (
        f"import {{ isSpecialUseIP }} from '{module}';\n"
        "let data = ''; process.stdin.on('data', (c) => { data += c; });\n"
        "process.stdin.on('end', () => { const out = {};\n"
        "  for (const a of JSON.parse(data)) out[a] = isSpecialUseIP(a);\n"
        "  process.stdout.write(JSON.stringify(out)); });\n"
    )
    done = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(
        ADDRESSES), capture_output=True, text=True, timeout=30, check=True, cwd=INTEROP)
    theirs: dict[str, bool] = json.loads(done.stdout)
    ours = {a: is_forbidden_address(ipaddress.ip_address(a)) for a in ADDRESSES}
    # Ours refuses more: multicast, and IPv6 forms carrying a private IPv4. Theirs refuses the
    # whole NAT64 prefix; ours lets through a NAT64 address of a public IPv4 one (what
    # DNS64 gives an IPv6-only deployment for every IPv4-only site), refusing the rest.
    assert {a for a in ADDRESSES if theirs[a] and not ours[a]} == {"64:ff9b::808:808"}
    assert {a for a in ADDRESSES if ours[a] and not theirs[a]} <= {
        "::ffff:127.0.0.1", "2002:7f00:1::1", "255.255.255.255", "::", "224.0.0.1", "ff02::1"}


async def test_pin_refuses_private_targets_and_pins_the_checked_address() -> None:
    for uri in ("https://127.0.0.1/x", "https://[::1]/x", "https://10.0.0.1/x",
                "https://localhost/x", "ftp://example.test/"):
        with pytest.raises(ForbiddenTarget):
            await pin(uri)
    pinned = await pin("http://127.0.0.1:8123/bc?x=1", allow_loopback=True)
    assert pinned.url == "http://127.0.0.1:8123/bc?x=1" and pinned.host == "127.0.0.1"
    with pytest.raises(ForbiddenTarget):
        await pin("http://10.0.0.1:8123/bc", allow_loopback=True)  # loopback only
    named = await pin("http://localhost:8123/bc", allow_loopback=True)
    assert named.host == "localhost" and ipaddress.ip_address(named.address).is_loopback


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(40) == 3600.0


class Receiver:
    """An RP's back-channel endpoint that answers with the statuses it is given."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.tokens: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                from urllib.parse import parse_qs

                receiver.tokens.extend(parse_qs(body).get("logout_token", []))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Algs:
    def __init__(self, world: World) -> None:
        self.world = world

    async def id_token_alg(self, client_id: str) -> str | None:
        stored = await self.world.clients.get(client_id)
        return stored.metadata.id_token_signed_response_alg if stored else None


async def _setup(world: World, receiver: Receiver) -> tuple[str, str, str, LogoutOutbox]:
    client_id, _ = await register_web(world, backchannel_logout_uri=receiver.url)
    user_id = await world.user()
    made = await world.families.create(user_id=user_id, client_id=client_id, refresh=False,
                                       now=world.provider.now())
    now = world.provider.now()
    await world.grants.link(GrantLink(
        session_id=made.session_id, client_id=client_id, user_id=user_id, scope=("openid",),
        resource=None, parent_sid="signin-1", offline=False, nonce=None, auth_time=now,
        amr=("pwd",), acr="aal1", created_at=now,
    ))
    outbox = LogoutOutbox(world.db)
    assert await outbox.enqueue(["signin-1"], now) == 1
    return client_id, user_id, made.session_id, outbox


def _sender(world: World, outbox: LogoutOutbox, http: httpx.AsyncClient,
            instance: str) -> BackchannelSender:
    return BackchannelSender(world.provider.config, outbox, world.keys, Algs(world), http,
                             now=world.provider.now, instance=instance, max_attempts=3)


async def test_logout_token_is_delivered_once_by_one_of_several_instances(
    loopback_world: World
) -> None:
    world = loopback_world
    receiver = Receiver([])
    try:
        client_id, user_id, sid, outbox = await _setup(world, receiver)
        async with httpx.AsyncClient() as http:
            import asyncio

            senders = [_sender(world, outbox, http, f"instance-{n}") for n in range(3)]
            delivered = await asyncio.gather(*(s.run_once() for s in senders))
            assert sum(delivered) == 1
            assert sum(await asyncio.gather(*(s.run_once() for s in senders))) == 0
        assert len(receiver.tokens) == 1
        decoded = jwt.decode(receiver.tokens[0], KeySet.import_key_set(world.keys.jwks),
                             algorithms=["RS256"])
        assert decoded.header["typ"] == "logout+jwt"
        claims = decoded.claims
        assert claims["iss"] == world.provider.config.issuer and claims["aud"] == client_id
        assert claims["sub"] == user_id and claims["sid"] == sid
        assert claims["events"] == {EVENT: {}} and "nonce" not in claims
        assert claims["exp"] - claims["iat"] == 120 and claims["jti"]
        assert await outbox.counts() == {"delivered": 1}
    finally:
        receiver.close()


async def test_5xx_is_retried_with_backoff_and_4xx_is_final(loopback_world: World) -> None:
    world = loopback_world
    receiver = Receiver([503, 500, 200])
    try:
        _, _, _, outbox = await _setup(world, receiver)
        async with httpx.AsyncClient() as http:
            sender = _sender(world, outbox, http, "one")
            assert await sender.run_once() == 0  # 503
            assert await sender.run_once() == 0  # not due yet: back-off
            world.clock.advance(backoff(0) + 1)
            assert await sender.run_once() == 0  # 500
            world.clock.advance(backoff(1) + 1)
            assert await sender.run_once() == 1  # 200
        assert len(receiver.tokens) == 3 and await outbox.counts() == {"delivered": 1}
    finally:
        receiver.close()
    refusing = Receiver([400])
    try:
        other = await register_web(world, backchannel_logout_uri=refusing.url,
                                   client_name="Refuses")
        user_id = await world.user("bob")
        made = await world.families.create(user_id=user_id, client_id=other[0], refresh=False,
                                           now=world.provider.now())
        now = world.provider.now()
        await world.grants.link(GrantLink(
            session_id=made.session_id, client_id=other[0], user_id=user_id, scope=("openid",),
            resource=None, parent_sid="signin-2", offline=False, nonce=None, auth_time=now,
            amr=("pwd",), acr="aal1", created_at=now,
        ))
        await outbox.enqueue(["signin-2"], now)
        async with httpx.AsyncClient() as http:
            sender = _sender(world, outbox, http, "one")
            assert await sender.run_once() == 0
            world.clock.advance(timedelta(hours=2).total_seconds())
            assert await sender.run_once() == 0
        assert len(refusing.tokens) == 1
        assert await outbox.counts() == {"delivered": 1, "failed": 1}
    finally:
        refusing.close()


async def test_without_allow_loopback_nothing_is_sent_to_loopback(loopback_world: World) -> None:
    from dataclasses import replace

    world = loopback_world
    receiver = Receiver([])
    try:
        _, _, _, outbox = await _setup(world, receiver)
        strict = replace(world.provider.config, allow_loopback=False)
        async with httpx.AsyncClient() as http:
            sender = BackchannelSender(strict, outbox, world.keys, Algs(world), http,
                                       now=world.provider.now, instance="strict")
            assert await sender.run_once() == 0
        assert receiver.tokens == [] and await outbox.counts() == {"failed": 1}
    finally:
        receiver.close()
