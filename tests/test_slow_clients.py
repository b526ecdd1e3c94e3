"""Slow clients against a real `jwtauth serve` (issue 13, point 3; web/deadlines.py): a
connection that has not delivered its request line and headers within
JWTAUTH_HEADER_TIMEOUT, or its body within JWTAUTH_BODY_TIMEOUT, is closed (408 with
the JSON error when part of a request came); a trickle of bytes does not renew the
deadline; headers over JWTAUTH_MAX_HEADER_BYTES are refused with 431 while they arrive,
not after 16 MiB have been read. Raw sockets, since no HTTP client sends like this.

How long each connection stayed open is written to tests/output/slow_clients.json
(the figures in bench/README.md); the asserts are about what happened, not how fast.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveProcess, free_port, server_env, start_process

HEADER_TIMEOUT = 1
BODY_TIMEOUT = 2
GUARD = 15.0  # seconds a test waits for the server before calling it a hang
OUTPUT = Path(__file__).parent / "output" / "slow_clients.json"
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProcess]:
    workdir = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = {**server_env(workdir / "jwtauth.db"), "JWTAUTH_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
           "JWTAUTH_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    live = start_process(["-m", "jwtauth", "serve", "--port", str(port)], env,
                         f"http://127.0.0.1:{port}", workdir / "server.log", "/healthz")
    yield live
    live.stop()
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(
        {"header_timeout": HEADER_TIMEOUT, "body_timeout": BODY_TIMEOUT, **FIGURES}, indent=2
    ))


def connect(live: LiveProcess) -> socket.socket:
    host, port = live.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=GUARD)


def until_closed(sock: socket.socket, drip: bytes = b"") -> tuple[bytes, float]:
    """Read (sending ``drip`` every 0.2 s meanwhile) until the server closes; what it sent
    and the seconds it took. Fails if the server keeps the connection past GUARD."""
    started = time.monotonic()
    received = b""
    while time.monotonic() - started < GUARD:
        if select.select([sock], [], [], 0.2)[0]:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return received, time.monotonic() - started
            received += data
        elif drip:
            try:
                sock.sendall(drip)
            except (BrokenPipeError, ConnectionResetError):
                continue
    pytest.fail(f"the connection was still open after {GUARD} s")


def assert_408(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"error": "invalid_request"' in answer
    assert b"connection: close" in answer.lower()


def test_an_idle_connection_is_closed_after_the_header_deadline(server: LiveProcess) -> None:
    with connect(server) as sock:
        answer, seconds = until_closed(sock)
    assert answer == b""  # nothing asked, nothing answered
    FIGURES["idle_open_seconds"] = round(seconds, 2)


def test_half_a_request_line_gets_408_and_is_closed(server: LiveProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /heal")
        answer, seconds = until_closed(sock)
    assert_408(answer)
    FIGURES["half_request_line_open_seconds"] = round(seconds, 2)


def test_a_trickle_of_header_bytes_does_not_renew_the_deadline(server: LiveProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer, seconds = until_closed(sock, drip=b"a")  # one byte per 0.2 s
    assert_408(answer)
    FIGURES["dripping_header_open_seconds"] = round(seconds, 2)


def test_a_body_stopped_midway_gets_408_and_is_closed(server: LiveProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"username\": \"al")
        answer, seconds = until_closed(sock)
    assert_408(answer)
    FIGURES["half_body_open_seconds"] = round(seconds, 2)


def test_requests_within_the_deadlines_are_served_on_a_kept_alive_connection(
    server: LiveProcess,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(request[:10])
            time.sleep(0.2)  # well inside the 1 s header deadline
            sock.sendall(request[10:])
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert b"connection: close" not in head.lower()
            assert json.loads(body) == {"status": "ok"}


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length: its head and body."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, "closed"
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    while len(body) < length:
        data = sock.recv(65536)
        assert data, "closed"
        body += data
    return head, body


def test_16_mib_of_headers_are_refused_while_they_arrive(server: LiveProcess) -> None:
    chunk = b"X-Pad: " + b"p" * (64 * 1024 - 9) + b"\r\n"
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while sent < 16 * 1024 * 1024:
            if select.select([sock], [], [], 0.5)[0]:
                break  # answered before the headers ended
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer, _ = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"invalid_request"' in answer
    # Refused within a read or two past the 16 KiB limit, where uvicorn read all 16 MiB.
    assert sent < 1024 * 1024, sent
    FIGURES["header_bytes_sent_before_431"] = sent
