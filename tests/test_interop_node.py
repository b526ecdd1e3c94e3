"""Interop with the Node libraries the tutorials use (issue 3, point 6).

Node's ``jose`` and ``jsonwebtoken`` (pinned in interop/package-lock.json, installed by
``.ci/run``) verify the access tokens of real ``jwtauth serve`` processes, one per
algorithm, through the JWKS those servers publish (or the shared secret for HS256). The
other way round, our ``Verifier`` accepts a token that Node's ``jose`` signed with a key it
published in a JWKS. The Node side lives in interop/*.mjs: JSON in on stdin, JSON out.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwtauth import InvalidToken, Verifier

from conftest import PASSWORD, LiveProcess, free_port, server_env, start_process, unavailable

INTEROP = Path(__file__).resolve().parent.parent / "interop"
AUDIENCE = "jwtauth"

# What each library can verify among our algorithms. jsonwebtoken 9 has no EdDSA
# (test_jsonwebtoken_9_has_no_eddsa keeps this table honest).
NODE_VERIFIES = [
    ("jose", "ES256"), ("jose", "RS256"), ("jose", "EdDSA"), ("jose", "HS256"),
    ("jsonwebtoken", "ES256"), ("jsonwebtoken", "RS256"), ("jsonwebtoken", "HS256"),
]
JOSE_SIGNS = ["ES256", "RS256", "EdDSA"]
NODE_ISSUER = "https://node-issuer.test"
NODE_AUDIENCE = "node-api"


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` binary, with interop/node_modules installed (``make test`` runs
    ``npm ci`` where npm is on PATH)."""
    path = shutil.which("node")
    if path is None:
        unavailable("Node.js", "no `node` on PATH; install Node.js 20+ with npm, then run "
                    "`make test`")
    assert path is not None
    if not (INTEROP / "node_modules" / "jose").is_dir() or not (
        INTEROP / "node_modules" / "jsonwebtoken"
    ).is_dir():
        unavailable("interop/node_modules",
                    "not installed; `make test` installs it where npm is on PATH, or run "
                    "`cd interop && npm ci`")
    return path


def run_node(node: str, script: str, request: dict[str, Any]) -> dict[str, Any]:
    # The token goes on stdin, not argv, where any process on the machine could read it.
    done = subprocess.run(
        [node, str(INTEROP / script)], input=json.dumps(request), cwd=INTEROP,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- Our servers, one process per algorithm ---------------------------------------------


@dataclass
class Server:
    alg: str
    live: LiveProcess
    issuer: str
    jwks_url: str
    secret: str | None

    def signup(self) -> tuple[dict[str, Any], str]:
        """A new user and their access token from this server."""
        name = "node_" + uuid.uuid4().hex[:12]
        with httpx.Client(base_url=self.live.url, timeout=10) as client:
            account = {"username": name, "password": PASSWORD}
            registered = client.post("/auth/register", json=account)
            assert registered.status_code == 201, registered.text
            login = client.post("/auth/login", json=account)
            assert login.status_code == 200, login.text
        return registered.json(), str(login.json()["access_token"])

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.jwks_url, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


class Servers:
    """Started on first use, so a run of one test starts one server."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: dict[str, Server] = {}

    def __getitem__(self, alg: str) -> Server:
        if alg not in self.started:
            self.started[alg] = self._start(alg)
        return self.started[alg]

    def _start(self, alg: str) -> Server:
        workdir = self.workdir / alg
        workdir.mkdir()
        env = server_env(workdir / "jwtauth.db")
        env["JWTAUTH_ALGORITHM"] = alg
        secret = secrets.token_urlsafe(48) if alg == "HS256" else None
        if secret is not None:
            env["JWTAUTH_SECRET"] = secret
        port = free_port()
        live = start_process(
            ["-m", "jwtauth", "serve", "--port", str(port)], env,
            f"http://127.0.0.1:{port}", workdir / "server.log", "/healthz",
        )
        # Found the way an outside service finds them: from the discovery document.
        discovery = httpx.get(f"{live.url}/.well-known/openid-configuration", timeout=10).json()
        return Server(alg, live, discovery["issuer"], discovery["jwks_uri"], secret)

    def stop(self) -> None:
        for server in self.started.values():
            server.live.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    pool = Servers(tmp_path_factory.mktemp("interop"))
    yield pool
    pool.stop()


def verify_request(server: Server, library: str, token: str) -> dict[str, Any]:
    """What a Node service configures: issuer, audience, algorithm, and where the key is."""
    request: dict[str, Any] = {
        "library": library, "token": token, "issuer": server.issuer, "audience": AUDIENCE,
        "alg": server.alg,
    }
    if server.secret is not None:
        request["secret"] = server.secret
    elif library == "jose":
        request["jwks_url"] = server.jwks_url  # createRemoteJWKSet fetches it
    else:
        request["jwks"] = server.jwks()  # jsonwebtoken fetches nothing: its users do
    return request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# -- Node verifies our tokens -------------------------------------------------------------


@pytest.mark.parametrize(("library", "alg"), NODE_VERIFIES)
def test_node_verifies_our_access_token(
    node: str, servers: Servers, library: str, alg: str
) -> None:
    server = servers[alg]
    user, token = server.signup()
    result = run_node(node, "verify.mjs", verify_request(server, library, token))
    assert result["ok"], result
    assert result["header"]["alg"] == alg
    assert result["header"]["typ"] == "at+jwt"
    payload = result["payload"]
    assert payload["sub"] == str(user["id"])
    assert payload["iss"] == server.issuer
    assert payload["aud"] == AUDIENCE
    assert payload["roles"] == ["user"]
    assert {"iat", "nbf", "exp", "jti", "sid"} <= payload.keys()
    if server.secret is None:
        kids = {key["kid"] for key in server.jwks()["keys"]}
        assert result["header"]["kid"] in kids


@pytest.mark.parametrize("library", ["jose", "jsonwebtoken"])
def test_node_refuses_our_token_with_a_tampered_payload(
    node: str, servers: Servers, library: str
) -> None:
    server = servers["ES256"]
    _, token = server.signup()
    header, payload, signature = token.split(".")
    claims = b64url_json(payload)
    claims["roles"] = ["user", "admin"]
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    result = run_node(node, "verify.mjs", verify_request(server, library, forged))
    assert not result["ok"], result
    if library == "jose":
        assert result["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", result
    else:
        assert result["message"] == "invalid signature", result


@pytest.mark.parametrize("library", ["jose", "jsonwebtoken"])
def test_node_refuses_our_token_for_another_audience(
    node: str, servers: Servers, library: str
) -> None:
    server = servers["ES256"]
    _, token = server.signup()
    request = verify_request(server, library, token) | {"audience": "some-other-api"}
    result = run_node(node, "verify.mjs", request)
    assert not result["ok"], result
    assert "aud" in result["message"] or "audience" in result["message"], result


def test_jsonwebtoken_9_has_no_eddsa(node: str, servers: Servers) -> None:
    """Why NODE_VERIFIES leaves out jsonwebtoken + EdDSA; fails once it gains support."""
    server = servers["EdDSA"]
    _, token = server.signup()
    result = run_node(node, "verify.mjs", verify_request(server, "jsonwebtoken", token))
    assert not result["ok"], result
    # Its key check knows RSA and EC keys only (lib/validateAsymmetricKey.js).
    assert result["message"] == 'Unknown key type "ed25519".', result


# -- Our Verifier accepts tokens Node's jose signed -----------------------------------------


@dataclass
class NodeToken:
    jwks: dict[str, Any]
    token: str
    payload: dict[str, Any]


def jose_sign(node: str, alg: str, **overrides: Any) -> NodeToken:
    request = {"alg": alg, "issuer": NODE_ISSUER, "audience": NODE_AUDIENCE, "sub": "42",
               "roles": ["user", "editor"], **overrides}
    result = run_node(node, "sign.mjs", request)
    return NodeToken(result["jwks"], result["token"], result["payload"])


class JWKSServer:
    """A plain JWKS endpoint on 127.0.0.1 serving one fixed key set (a thread)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def assert_node_claims(claims: Any, signed: NodeToken) -> None:
    assert claims.sub == "42"
    assert claims.roles == ("user", "editor")
    assert claims.sid == signed.payload["sid"]
    assert claims.jti == signed.payload["jti"]
    assert claims.exp == signed.payload["exp"]


@pytest.mark.parametrize("alg", JOSE_SIGNS)
async def test_our_verifier_from_jwks_accepts_a_token_node_jose_signed(
    node: str, alg: str
) -> None:
    signed = jose_sign(node, alg)
    verifier = Verifier.from_jwks(signed.jwks, issuer=NODE_ISSUER, audience=NODE_AUDIENCE)
    assert_node_claims(await verifier.verify(signed.token), signed)


@pytest.mark.parametrize("alg", JOSE_SIGNS)
async def test_our_verifier_from_jwks_url_accepts_a_token_node_jose_signed(
    node: str, alg: str
) -> None:
    signed = jose_sign(node, alg)
    key_server = JWKSServer(signed.jwks)
    verifier = Verifier.from_jwks_url(key_server.url, issuer=NODE_ISSUER, audience=NODE_AUDIENCE)
    try:
        assert_node_claims(await verifier.verify(signed.token), signed)
    finally:
        await verifier.aclose()
        key_server.close()


async def test_our_verifier_refuses_a_node_token_typed_jwt(node: str) -> None:
    """RFC 9068: an ID token or any other JWT from the same key is not an access token."""
    signed = jose_sign(node, "ES256", typ="JWT")
    verifier = Verifier.from_jwks(signed.jwks, issuer=NODE_ISSUER, audience=NODE_AUDIENCE)
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(signed.token)
    assert refused.value.reason == "typ is not at+jwt"
