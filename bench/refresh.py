"""Refresh and login throughput and latency on SQLite and PostgreSQL (issue 5, target 5).

Starts `jwtauth serve` on each database, then runs --conns concurrent refresh chains
(each POSTs its own refresh token in the body and continues with the rotated one) for
--duration seconds, and the same for logins; prints req/s, p50 and p99 per database.
Then fires 20 concurrent refreshes with one token and counts the 200s (must be 1).

Run:  .venv/bin/python bench/refresh.py [--conns 16] [--duration 10]
          [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from propagation import PASSWORD, free_port, wait_ready


async def chain(client: httpx.AsyncClient, token: str, until: float, lat: list[float]) -> int:
    done = 0
    while time.perf_counter() < until:
        start = time.perf_counter()
        response = await client.post("/auth/refresh", json={"refresh_token": token})
        lat.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"refresh answered {response.status_code}: {response.text}")
        token = response.json()["refresh_token"]
        done += 1
    return done


async def logins(client: httpx.AsyncClient, until: float, lat: list[float]) -> int:
    done = 0
    while time.perf_counter() < until:
        start = time.perf_counter()
        response = await client.post(
            "/auth/login", json={"username": "benchuser", "password": PASSWORD}
        )
        lat.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"login answered {response.status_code}")
        done += 1
    return done


def summary(name: str, count: int, seconds: float, lat: list[float]) -> str:
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    return (f"{name}: {count / seconds:,.0f} req/s, p50 {statistics.median(lat):.1f} ms, "
            f"p99 {p99:.1f} ms ({count} requests)")


async def measure(url: str, conns: int, duration: float) -> None:
    limits = httpx.Limits(max_connections=conns + 20)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await client.post("/auth/register", json={"username": "benchuser", "password": PASSWORD})
        tokens = []
        for _ in range(conns):
            body = (await client.post(
                "/auth/login", json={"username": "benchuser", "password": PASSWORD})).json()
            tokens.append(body["refresh_token"])
        lat: list[float] = []
        until = time.perf_counter() + duration
        counts = await asyncio.gather(*(chain(client, t, until, lat) for t in tokens))
        print("  " + summary("refresh", sum(counts), duration, lat))
        lat = []
        until = time.perf_counter() + duration
        counts = await asyncio.gather(*(logins(client, until, lat) for _ in range(4)))
        print("  " + summary("login (4 connections)", sum(counts), duration, lat))
        body = (await client.post(
            "/auth/login", json={"username": "benchuser", "password": PASSWORD})).json()
        answers = await asyncio.gather(*(
            client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
            for _ in range(20)))
        codes = [a.status_code for a in answers]
        print(f"  20 concurrent refreshes of one token: {codes.count(200)} x 200, "
              f"{codes.count(401)} x 401, {sum(c >= 500 for c in codes)} x 5xx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jwtauth-refresh-"))
    schema = "bench_" + uuid.uuid4().hex[:12]
    databases = {
        "sqlite": {"JWTAUTH_DATABASE_URL": f"sqlite:///{work}/r.db"},
        "postgresql": {"JWTAUTH_DATABASE_URL": args.postgres, "JWTAUTH_DATABASE_SCHEMA": schema},
    }
    for name, db_env in databases.items():
        port = free_port()
        env = {**os.environ, **db_env, "JWTAUTH_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "jwtauth", "serve", "--port", str(port),
             "--workers", str(args.workers)],
            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, proc)
            print(f"{name} ({args.workers} worker(s), {args.conns} refresh chains):")
            asyncio.run(measure(url, args.conns, args.duration))
        finally:
            proc.terminate()
            proc.wait(10)
    subprocess.run(["psql", args.postgres, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
                   check=False, capture_output=True)


if __name__ == "__main__":
    main()
