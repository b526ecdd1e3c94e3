"""Request size limits (web/limits.py): bodies over JWTAUTH_MAX_BODY_BYTES get 413 and
headers over JWTAUTH_MAX_HEADER_BYTES get 431, before the app parses anything; in process
over ASGI, and on a real `jwtauth serve` (whose httptools parser has no header limit)."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jwtauth.server.web.limits import DEFAULT_MAX_HEADER_BYTES

from conftest import PASSWORD, AppFactory, LiveProcess, free_port, server_env, start_process

LIMIT = 4096


def registration(pad: int) -> dict[str, Any]:
    # pydantic ignores the unknown "pad": the body is valid, only its size matters.
    return {"username": "bob", "password": PASSWORD, "pad": "x" * pad}


async def assert_not_registered(api: Any) -> None:
    """The proof that the app never acted on a refused body."""
    response = await api.client.post("/auth/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 401


def assert_too_large(response: Any, status: int = 413) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"]


async def test_body_within_the_limit_is_served(make_api: AppFactory) -> None:
    api = await make_api(max_body_bytes=LIMIT)
    response = await api.client.post("/auth/register", json=registration(LIMIT - 200))
    assert response.status_code == 201, response.text


async def test_body_over_the_declared_limit_refused_with_413(make_api: AppFactory) -> None:
    api = await make_api(max_body_bytes=LIMIT)
    body = json.dumps(registration(LIMIT)).encode()
    response = await api.client.post(
        "/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert int(response.request.headers["content-length"]) > LIMIT
    assert_too_large(response)
    assert response.headers["connection"] == "close"
    await assert_not_registered(api)


async def test_chunked_body_over_the_limit_cut_off_with_413(make_api: AppFactory) -> None:
    api = await make_api(max_body_bytes=LIMIT)
    body = json.dumps(registration(64 * 1024)).encode()
    pulled = []

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, len(body), 1024):
            pulled.append(start)
            yield body[start:start + 1024]

    response = await api.client.post(
        "/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_too_large(response)
    # Read up to the chunk that crossed the limit, and not one byte further.
    assert len(pulled) == LIMIT // 1024 + 1
    await assert_not_registered(api)


async def test_body_limit_applies_to_authenticated_routes(make_api: AppFactory) -> None:
    api = await make_api(max_body_bytes=LIMIT)
    tokens = await api.signup()
    response = await api.client.post(
        "/posts", json={"title": "big", "content": "x" * LIMIT}, headers=tokens.headers
    )
    assert_too_large(response)
    assert (await api.client.get("/posts")).json() == []


async def test_largest_post_fits_the_default_limit(make_api: AppFactory) -> None:
    # API.md allows 100,000 characters; as \\u-escaped JSON of astral characters (what
    # Python's json.dumps sends by default) that is 1.2 MB, under the 2 MiB default.
    api = await make_api()
    tokens = await api.signup()
    body = json.dumps({"title": "\U0001f600" * 200, "content": "\U0001f600" * 100_000}).encode()
    assert len(body) > 1_200_000
    response = await api.client.post(
        "/posts", content=body, headers={**tokens.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text[:200]


async def asgi_call(
    app: Any, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, bytes]:
    """One raw ASGI request: for framing no HTTP client will send."""
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": "/auth/register", "raw_path": b"/auth/register",
        "query_string": b"", "root_path": "", "headers": headers,
        "server": ("jwtauth.test", 443), "client": ("127.0.0.1", 50000),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "lengths", [[b"abc"], [b"-1"], [b"1e3"], [b" 10"], [b"10", b"20"]], ids=repr
)
async def test_invalid_content_length_refused_with_400(
    make_api: AppFactory, lengths: list[bytes]
) -> None:
    api = await make_api(max_body_bytes=LIMIT)
    headers = [(b"host", b"jwtauth.test"), (b"content-type", b"application/json")]
    headers += [(b"content-length", value) for value in lengths]
    status, body = await asgi_call(api.app, headers, json.dumps(registration(0)).encode())
    assert status == 400
    assert json.loads(body)["error"] == "invalid_request"
    await assert_not_registered(api)


async def test_headers_over_the_limit_refused_with_431(make_api: AppFactory) -> None:
    api = await make_api()
    tokens = await api.signup()
    padding = {f"x-pad-{i}": "p" * 1000 for i in range(DEFAULT_MAX_HEADER_BYTES // 1000 - 3)}
    fits = await api.client.get("/users/me", headers={**tokens.headers, **padding})
    assert fits.status_code == 200, fits.text
    padding["x-pad-last"] = "p" * 4000
    response = await api.client.get("/users/me", headers={**tokens.headers, **padding})
    assert_too_large(response, 431)
    long_url = await api.client.get("/posts", params={"q": "p" * DEFAULT_MAX_HEADER_BYTES})
    assert_too_large(long_url, 431)


# -- on a real server process ----------------------------------------------------------


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProcess]:
    workdir: Path = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = {**server_env(workdir / "jwtauth.db"), "JWTAUTH_MAX_BODY_BYTES": str(64 * 1024)}
    live = start_process(["-m", "jwtauth", "serve", "--port", str(port)], env,
                         f"http://127.0.0.1:{port}", workdir / "server.log", "/healthz")
    yield live
    live.stop()


def exchange(url: str, head: bytes, chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request head, then body chunks until the server answers; its answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0.05)[0]:
                break  # answered before the body was all sent
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return received


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


@pytest.mark.parametrize("size", [20_000, 1_000_000])
def test_real_server_refuses_oversized_headers_with_431(
    small_server: LiveProcess, size: int
) -> None:
    head = (f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {'p' * size}\r\n\r\n").encode()
    answer = exchange(small_server.url, head)
    assert status_of(answer) == 431
    assert b'"invalid_request"' in answer


def test_real_server_refuses_a_declared_oversized_body_without_reading_it(
    small_server: LiveProcess,
) -> None:
    head = (b"POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3000000\r\n\r\n")
    answer = exchange(small_server.url, head)  # the body is never sent: no need to read it
    assert status_of(answer) == 413
    assert b'"invalid_request"' in answer


def test_real_server_cuts_off_a_chunked_body_with_413(small_server: LiveProcess) -> None:
    head = (b"POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunks = (b"2000\r\n" + b"x" * 0x2000 + b"\r\n" for _ in range(1000))  # 8 MB if read
    answer = exchange(small_server.url, head, chunks)
    assert status_of(answer) == 413
    assert b'"invalid_request"' in answer
