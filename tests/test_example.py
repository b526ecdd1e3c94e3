"""examples/protected_service.py as its own process (uvicorn), protected through the JWKS of
a running jwtauth server: the way an outside service uses the library (API.md "Library")."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import PASSWORD, LiveProcess, free_port, start_process

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def service(live_server: LiveProcess, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[LiveProcess]:
    workdir = tmp_path_factory.mktemp("protected_service")
    port = free_port()
    env = dict(live_server.env)
    env.update(JWKS_URL=f"{live_server.url}/.well-known/jwks.json",
               TOKEN_ISSUER=live_server.url, TOKEN_AUDIENCE="jwtauth")
    live = start_process(
        ["-m", "uvicorn", "--app-dir", str(EXAMPLES), "protected_service:app",
         "--host", "127.0.0.1", "--port", str(port)],
        env, f"http://127.0.0.1:{port}", workdir / "service.log", "/hello",
    )
    yield live
    live.stop()


@pytest.fixture
async def server(live_server: LiveProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def protected(service: LiveProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        yield client


async def login(server: httpx.AsyncClient, name: str) -> str:
    response = await server.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def signup(server: httpx.AsyncClient, name: str) -> str:
    response = await server.post("/auth/register", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return await login(server, name)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_example_is_about_20_lines_on_the_public_library_only() -> None:
    source = (EXAMPLES / "protected_service.py").read_text()
    tree = ast.parse(source)
    after_docstring = source.splitlines()[tree.body[1].lineno - 1 :]
    code = [line for line in after_docstring if line.strip() and not line.strip().startswith("#")]
    assert len(code) <= 25
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"fastapi", "jwtauth", "jwtauth.fastapi"}
    assert "Verifier.from_jwks_url" in source


async def test_hello_answers_200_with_a_token_from_the_server(
    server: httpx.AsyncClient, protected: httpx.AsyncClient
) -> None:
    token = await signup(server, "example_alice")
    response = await protected.get("/hello", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"hello": "example_alice"}


async def test_hello_without_a_token_answers_401_invalid_token(
    protected: httpx.AsyncClient,
) -> None:
    # No install_error_handlers in the example: the library's guards answer this alone.
    response = await protected.get("/hello")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "message": "An access token is required."}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="jwtauth"'


async def test_the_examples_openapi_offers_the_bearer_scheme_for_swagger_ui(
    protected: httpx.AsyncClient,
) -> None:
    document = (await protected.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert document["paths"]["/hello"]["get"]["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/admin"]["get"]["security"] == [{"bearerAuth": []}]


async def test_hello_with_a_tampered_token_answers_401_invalid_token(
    server: httpx.AsyncClient, protected: httpx.AsyncClient
) -> None:
    token = await signup(server, "example_mallory")
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    response = await protected.get("/hello", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_admin_as_a_plain_user_answers_403_insufficient_role(
    server: httpx.AsyncClient, protected: httpx.AsyncClient
) -> None:
    token = await signup(server, "example_bob")
    response = await protected.get("/admin", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_role"


async def test_admin_as_an_admin_answers_200(
    live_server: LiveProcess, server: httpx.AsyncClient, protected: httpx.AsyncClient
) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "jwtauth", "user", "create", "example_root", "--role", "admin",
         "--password-stdin"],
        input=PASSWORD + "\n", env=live_server.env, cwd=live_server.log.parent,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert created.returncode == 0, created.stderr
    response = await protected.get("/admin", headers=bearer(await login(server, "example_root")))
    assert response.status_code == 200, response.text
    assert response.json() == {"admin": "ok"}
