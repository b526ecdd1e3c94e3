"""How fast a logout served by one server process is honoured by every other one.

Starts `jwtauth serve --workers N` (or uses --url), then for each of --samples sessions:
logs in, checks the token works, logs out, and from that moment sends GET /users/me on
new connections (the kernel spreads them over the workers) until --confirm answers in a
row are 401. The delay is from the logout's 204 to the first of those 401s.

Run:  .venv/bin/python bench/propagation.py [--workers 2] [--samples 30] [--env K=V ...]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

PASSWORD = "correct-horse-battery-9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def one_sample(url: str, user: str, confirm: int) -> float:
    with httpx.Client(base_url=url) as client:
        token = client.post("/auth/login", json={"username": user, "password": PASSWORD}).json()[
            "access_token"
        ]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(20):  # warm every worker's verified-token cache with this token
        with httpx.Client(base_url=url) as fresh:
            assert fresh.get("/users/me", headers=headers).status_code == 200
    with httpx.Client(base_url=url) as client:
        assert client.post("/auth/logout", headers=headers).status_code == 204
    logged_out = time.perf_counter()
    first_401 = None
    streak = 0
    while streak < confirm:
        with httpx.Client(base_url=url) as fresh:  # a new connection: maybe another worker
            status = fresh.get("/users/me", headers=headers).status_code
        if status == 401:
            first_401 = first_401 or time.perf_counter()
            streak += 1
        else:
            first_401, streak = None, 0
        if time.perf_counter() - logged_out > 10:
            raise SystemExit("a worker kept accepting the token for 10 s")
    assert first_401 is not None
    return (first_401 - logged_out) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--confirm", type=int, default=20)
    parser.add_argument("--url", help="an already running server (with user benchuser)")
    parser.add_argument("--env", action="append", default=[], help="K=V for the server")
    args = parser.parse_args()
    proc = None
    url = args.url
    if url is None:
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="jwtauth-prop-")
        env = {**os.environ, "JWTAUTH_DATABASE_URL": f"sqlite:///{workdir}/p.db",
               "JWTAUTH_LOG_LEVEL": "WARNING"}
        env.update(kv.split("=", 1) for kv in args.env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jwtauth", "serve", "--port", str(port),
             "--workers", str(args.workers)],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc) if proc else None
        httpx.post(url + "/auth/register", json={"username": "benchuser", "password": PASSWORD})
        delays = [one_sample(url, "benchuser", args.confirm) for _ in range(args.samples)]
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
    delays.sort()
    print(f"logout honoured by every worker ({args.workers} workers, {len(delays)} samples, "
          f"{args.confirm} consecutive 401s): median {statistics.median(delays):.0f} ms, "
          f"p90 {delays[int(len(delays) * 0.9) - 1]:.0f} ms, max {delays[-1]:.0f} ms")


if __name__ == "__main__":
    main()
