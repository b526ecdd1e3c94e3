"""Event-loop CPU per request for login, refresh and GET /users/me, in process.

The app runs in this process behind httpx's ASGI transport on an SQLite file; the figure
is the loop thread's CPU time (``time.thread_time``) per request, client included, so it
counts the Python work of a request and not the argon2 hash or aiosqlite's thread. It
depends little on what else the machine runs, which makes it the A/B check for a change
of the request path: run it alternately on two checkouts with ``PYTHONPATH``.

Run:  PYTHONPATH=src .venv/bin/python bench/hotpath_cpu.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable

import httpx

from jwtauth.server.config import Settings
from jwtauth.server.web.app import create_app

LOGIN = {"username": "benchuser", "password": "correct-horse-battery-9"}


async def per_request(n: int, call: Callable[[], Awaitable[httpx.Response]]) -> float:
    start = time.thread_time()
    for _ in range(n):
        response = await call()
        assert response.status_code < 300, response.text
    return (time.thread_time() - start) / n * 1e6


async def measure(n: int) -> dict[str, float]:
    work = tempfile.mkdtemp(prefix="jwtauth-hotpath-")
    settings = Settings(
        database_url=f"sqlite:///{work}/b.db", issuer="https://bench.test",
        argon2_time_cost=1, argon2_memory_cost=8192, argon2_parallelism=1,
        login_max_failures=10**6, login_address_max_failures=10**6,
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://bench.test") as c:
            await c.post("/auth/register", json=LOGIN)
            for _ in range(20):  # warm-up
                await c.post("/auth/login", json=LOGIN)
            result = {"login_us": await per_request(n, lambda: c.post("/auth/login", json=LOGIN))}
            c.cookies.clear()
            tokens = [(await c.post("/auth/login", json=LOGIN)).json()]
            c.cookies.clear()

            async def refresh() -> httpx.Response:
                response = await c.post(
                    "/auth/refresh", json={"refresh_token": tokens[-1]["refresh_token"]}
                )
                tokens.append(response.json())
                return response

            result["refresh_us"] = await per_request(n, refresh)
            bearer = {"Authorization": f"Bearer {tokens[-1]['access_token']}"}
            result["me_us"] = await per_request(5 * n, lambda: c.get("/users/me", headers=bearer))
    finally:
        await lifespan.__aexit__(None, None, None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps({k: round(v) for k, v in asyncio.run(measure(args.requests)).items()}))


if __name__ == "__main__":
    main()
