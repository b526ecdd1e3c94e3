"""Human-readable output escapes control and bidi characters (issue 13, point 7;
server/terminal.py): a login attempt whose username holds a newline cannot forge an
audit line, and ESC sequences never reach the operator's terminal, in ``audit tail``,
the user and key listings, error messages that echo input, and the text log format."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import unicodedata
from contextlib import closing
from pathlib import Path

import httpx

from jwtauth.server.config import Settings
from jwtauth.server.logs import JsonFormatter, TextFormatter
from jwtauth.server.terminal import printable, printable_json
from jwtauth.server.web.app import create_app

from conftest import BASE_URL, FAST_HASH

FORGED_LINE = "x\n2026-01-01T00:00:00+00:00  #9  login_succeeded user=admin"
TERMINAL_ATTACK = "\x1b[2J\x1b]0;owned\x07\u202egnp.exe\x9b31m"
BIDI = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}


def is_dangerous(char: str) -> bool:
    """An independent statement of the rule, from the Unicode database."""
    return (
        unicodedata.category(char) == "Cc"
        or unicodedata.bidirectional(char) in BIDI
        or char in "\u200e\u200f\u061c"  # LRM, RLM, ALM (bidi class L, R, AL)
    )


def test_printable_escapes_exactly_the_controls_and_bidi_characters() -> None:
    everything = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF)
    escaped = printable(everything)
    assert not any(is_dangerous(char) for char in escaped)
    kept = [char for char in everything if not is_dangerous(char)]
    assert escaped.endswith("".join(kept[-100:]))
    assert printable("a\nb\tc\x1b\u202e\x85") == "a\\nb\\tc\\x1b\\u202e\\x85"
    assert printable(printable(TERMINAL_ATTACK)) == printable(TERMINAL_ATTACK)


def test_log_lines_carry_no_raw_controls() -> None:
    record = logging.LogRecord("jwtauth.audit", logging.INFO, __file__, 1, "login %s",
                               (FORGED_LINE,), None)
    record.username = TERMINAL_ATTACK
    text = TextFormatter().format(record)
    assert "\n" not in text and not any(is_dangerous(char) for char in text)
    line = JsonFormatter().format(record)
    assert not any(is_dangerous(char) for char in line)
    decoded = json.loads(line)
    assert decoded["message"] == "login " + FORGED_LINE
    assert decoded["username"] == TERMINAL_ATTACK
    assert json.loads(printable_json(json.dumps("é\u202e", ensure_ascii=False))) == "é\u202e"


def cli_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env["JWTAUTH_DATABASE_URL"] = f"sqlite:///{db}"
    return env


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", *args], cwd=db.parent, env=cli_env(db),
        capture_output=True, text=True, timeout=60, check=False,
    )


async def attempt_logins(db: Path, names: list[str]) -> None:
    settings = Settings(**FAST_HASH, database_url=f"sqlite:///{db}", issuer=BASE_URL)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            for name in names:
                response = await client.post(
                    "/auth/login", json={"username": name, "password": "whatever-it-is"},
                    headers={"User-Agent": b"agent\x1b[2J\x9b31m"},  # C1 CSI as latin-1
                )
                assert response.status_code == 401


AUDIT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+  #\d+  \w+ +user=")


async def test_audit_tail_escapes_a_forged_line_and_terminal_sequences(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    await attempt_logins(db, [FORGED_LINE, TERMINAL_ATTACK])
    result = cli(db, "audit", "tail")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2  # two events, two lines: nothing forged
    assert all(AUDIT_LINE.match(line) for line in lines), lines
    assert all(" login_failed " in line for line in lines)
    assert "user=x\\n2026-01-01T00:00:00+00:00  #9  login_succeeded user=admin" in lines[0]
    assert not any(is_dangerous(char) for char in result.stdout.replace("\n", ""))
    assert "\\x1b[2J" in lines[1] and "\\u202e" in lines[1]
    # JSON lines were safe already; they still decode to exactly what was attempted.
    as_json = cli(db, "audit", "tail", "--json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [row["username"] for row in rows] == [FORGED_LINE, TERMINAL_ATTACK]


def test_listings_and_error_messages_escape_what_they_echo(tmp_path: Path) -> None:
    db = tmp_path / "list.db"
    assert cli(db, "db", "upgrade").returncode == 0
    with closing(sqlite3.connect(db)) as conn:  # a name no entry point would accept
        conn.execute(
            "INSERT INTO users (id, username, email, password_hash, roles, created_at, "
            "updated_at) VALUES ('u1', ?, NULL, 'x', '[\"user\"]', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')", (TERMINAL_ATTACK + "\nfake",),
        )
        conn.commit()
    listed = cli(db, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1
    assert not any(is_dangerous(char) for char in listed.stdout.replace("\n", ""))
    missing = cli(db, "user", "delete", "no\x1b[2Jbody", "--yes")
    assert missing.returncode != 0
    assert "no\\x1b[2Jbody" in missing.stderr and "\x1b" not in missing.stderr
    keys = cli(db, "keys", "list")
    assert keys.returncode == 0 and "\x1b" not in keys.stdout
