"""What the OAuth interop tests share: the Node tools of interop/oidc/, the reference
provider (Node's oidc-provider) as a real process, the flow scripts, and a loopback
endpoint that receives back-channel logout tokens.

The same ``run_flows`` drives jwtauth in phase 2 of issue 14: only the issuer and the
clients in the request change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, unavailable

INTEROP = Path(__file__).resolve().parents[2] / "interop"
OIDC = INTEROP / "oidc"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_PACKAGES = ("oidc-provider", "openid-client", "playwright-core", "jose")
USER = {"username": "alice", "password": "correct-horse-battery-9"}


def node_tools() -> str:
    """The ``node`` binary, once interop/node_modules and Debian's Chromium are there;
    a skip with the reason otherwise (a failure under CI=true)."""
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js", "no `node` on PATH; install Node 20+")
    missing = [p for p in NODE_PACKAGES if not (INTEROP / "node_modules" / p).is_dir()]
    if missing:
        unavailable(
            "interop/node_modules", f"{', '.join(missing)} missing; run `cd interop && npm ci`"
        )
    if not Path(CHROMIUM).exists():
        unavailable("Chromium", f"{CHROMIUM} missing; `apt-get install chromium`")
    assert node is not None
    return node


@dataclass
class Reference:
    """A running oidc-provider: its issuer and the static clients it was configured with."""

    issuer: str
    clients: dict[str, Any]
    process: subprocess.Popen[str]
    errors: list[str] = field(default_factory=list)

    def flow_request(self, steps: list[str] | None = None) -> dict[str, Any]:
        web, app = self.clients["confidential"], self.clients["public"]
        request: dict[str, Any] = {
            "issuer": self.issuer,
            "user": USER,
            "confidential": {
                "client_id": web["client_id"],
                "client_secret": web["client_secret"],
                "redirect_uri": web["redirect_uris"][0],
                "post_logout_redirect_uri": web["post_logout_redirect_uris"][0],
                "resource": web["resources"][0],
            },
            "public": {
                "client_id": app["client_id"],
                "redirect_uri": app["redirect_uris"][0],
                "post_logout_redirect_uri": app["post_logout_redirect_uris"][0],
            },
        }
        if steps is not None:
            request["steps"] = steps
        return request

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def start_reference(node: str, *, backchannel_uri: str | None = None) -> Reference:
    """``node interop/oidc/provider.mjs --port N``, ready when it prints its JSON line."""
    port = free_port()
    args = [node, str(OIDC / "provider.mjs"), "--port", str(port)]
    if backchannel_uri:
        args += ["--backchannel-uri", backchannel_uri]
    process = subprocess.Popen(
        args, cwd=INTEROP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    ready: dict[str, Any] = {}

    def read_first_line() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line:
            ready.update(json.loads(line))

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if not ready.get("ready"):
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"oidc-provider did not start:\n{err[-3000:]}")
    reference = Reference(ready["issuer"], ready["clients"], process)

    def drain() -> None:  # keep the pipe from filling; keep server errors for the report
        assert process.stderr is not None
        for line in process.stderr:
            if "server_error" in line or "Error" in line:
                reference.errors.append(line.rstrip())

    threading.Thread(target=drain, daemon=True).start()
    return reference


def run_flows(node: str, request: dict[str, Any], *, timeout: float = 120) -> dict[str, Any]:
    """interop/oidc/flows.mjs with ``request`` on stdin (it holds client secrets)."""
    done = subprocess.run(
        [node, str(OIDC / "flows.mjs")], input=json.dumps(request), cwd=INTEROP,
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert done.returncode == 0, f"flows.mjs exited {done.returncode}:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class BackchannelReceiver:
    """A relying party's back-channel logout endpoint on loopback: it records every
    logout token POSTed to it (OIDC Back-Channel Logout 1.0 section 2.5)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                receiver.tokens.extend(form.get("logout_token", []))
                receiver.received.set()
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BackchannelReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def node() -> str:
    return node_tools()


@pytest.fixture(scope="module")
def backchannel() -> Iterator[BackchannelReceiver]:
    with BackchannelReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def reference(node: str, backchannel: BackchannelReceiver) -> Iterator[Reference]:
    provider = start_reference(node, backchannel_uri=backchannel.url)
    yield provider
    provider.stop()
