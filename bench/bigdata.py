"""Flat cost as data grows (issue 5, target 4).

Builds an SQLite database with --users users, --sessions sessions and --revoked revoked
sessions (live revocation entries, which every process holds in memory), starts one
server on it and one on an empty database, and measures GET /auth/check with wrk on
both, alternating rounds. Also reports the memory one revoked-session entry costs in
the in-memory RevocationList (tracemalloc) and each server's resident memory.

Run:  .venv/bin/python bench/bigdata.py [--users 1000000] [--sessions 1000000]
          [--revoked 100000] [--rounds 5] [--duration 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from propagation import PASSWORD, free_port, wait_ready

from jwtauth.revocation import RevocationKind, RevocationList

BATCH = 50_000


def populate(db: Path, users: int, sessions: int, revoked: int) -> None:
    subprocess.run([sys.executable, "-m", "jwtauth", "db", "upgrade"], check=True,
                   env={**os.environ, "JWTAUTH_DATABASE_URL": f"sqlite:///{db}"},
                   cwd=db.parent, stdout=subprocess.DEVNULL)
    now = datetime.now(UTC).replace(tzinfo=None)
    later = now + timedelta(days=30)
    stamp, until = now.isoformat(" "), later.isoformat(" ")
    fake_hash = "$argon2id$v=19$m=19456,t=2,p=1$" + "A" * 22 + "$" + "B" * 43
    conn = sqlite3.connect(db)
    user_ids: list[str] = []
    for start in range(0, users, BATCH):
        rows = [(str(uuid.uuid4()), f"user{i}", None, fake_hash, '["user"]', stamp, stamp)
                for i in range(start, min(users, start + BATCH))]
        user_ids.extend(r[0] for r in rows)
        conn.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?)", rows)
    session_ids: list[str] = []
    for start in range(0, sessions, BATCH):
        rows = [(str(uuid.uuid4()), user_ids[i % len(user_ids)], stamp, stamp, until, "bench",
                 "127.0.0.1", stamp if i < revoked else None)
                for i in range(start, min(sessions, start + BATCH))]
        session_ids.extend(r[0] for r in rows)
        conn.executemany("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?)", rows)
    for start in range(0, revoked, BATCH):
        end = min(revoked, start + BATCH)
        rows = [("sid", session_ids[i], stamp, until) for i in range(start, end)]
        conn.executemany(
            "INSERT INTO revocations (kind, value, created_at, expires_at) VALUES (?,?,?,?)", rows
        )
    conn.commit()
    conn.close()


def bytes_per_revocation(count: int) -> float:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    revocations = RevocationList(time.time)
    for sid in ids:
        revocations.add(RevocationKind.SESSION, sid, time.time() + 930)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # The id strings are counted too: the list holds them as the server would.
    return (used + sum(sys.getsizeof(i) for i in ids)) / count


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) if match else 0


def start(db: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "JWTAUTH_DATABASE_URL": f"sqlite:///{db}", "JWTAUTH_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jwtauth", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=db.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def token_for(url: str) -> str:
    httpx.post(url + "/auth/register", json={"username": "benchuser", "password": PASSWORD})
    credentials = {"username": "benchuser", "password": PASSWORD}
    body = httpx.post(url + "/auth/login", json=credentials).json()
    return str(body["access_token"])


def wrk(url: str, token: str, duration: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}s", "-H", f"Authorization: Bearer {token}",
         url + "/auth/check"], capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit("non-2xx answers: " + out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jwtauth-big-"))
    (work / "big").mkdir()
    (work / "empty").mkdir()
    t0 = time.perf_counter()
    populate(work / "big" / "big.db", args.users, args.sessions, args.revoked)
    print(f"populated {args.users:,} users, {args.sessions:,} sessions, {args.revoked:,} "
          f"revoked in {time.perf_counter() - t0:.0f} s")
    per_entry = bytes_per_revocation(args.revoked)
    print(f"memory per revoked-session entry in RevocationList: {per_entry:.0f} bytes")
    servers = {name: start(work / name / f"{name}.db", args.workers) for name in ("empty", "big")}
    try:
        tokens = {name: token_for(url) for name, (_, url) in servers.items()}
        for name, (_, url) in servers.items():
            wrk(url, tokens[name], 2)  # warm-up
        rates: dict[str, list[float]] = {"empty": [], "big": []}
        ratios = []
        for round_no in range(args.rounds):
            order = ["empty", "big"] if round_no % 2 == 0 else ["big", "empty"]
            for name in order:
                rates[name].append(wrk(servers[name][1], tokens[name], args.duration))
            ratios.append(rates["big"][-1] / rates["empty"][-1])
            print(f"round {round_no + 1}: empty {rates['empty'][-1]:,.0f} req/s, "
                  f"big {rates['big'][-1]:,.0f} req/s")
        for name, (proc, _) in servers.items():
            print(f"{name}: median {statistics.median(rates[name]):,.0f} req/s "
                  f"({min(rates[name]):,.0f}-{max(rates[name]):,.0f}), RSS of the parent "
                  f"process {rss_kib(proc.pid) / 1024:.0f} MiB")
        print(f"big/empty ratio: median {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f})")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
