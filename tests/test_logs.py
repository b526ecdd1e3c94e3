"""Structured logging (jwtauth.logs): one JSON object per line with every extra field,
a readable text form, and a real `jwtauth serve` writing nothing but such lines."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwtauth.server.logs import JsonFormatter, TextFormatter, format_line, protect_secret_loggers

from conftest import PASSWORD, free_port, server_env, start_process


def record(message: str = "user %s did %s", args: tuple[Any, ...] = ("alice", "it"),
           level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger("jwtauth.test")
    return logger.makeRecord(logger.name, level, __file__, 1, message, args, None, extra=extra)


def test_json_line_has_ts_level_logger_message_and_the_extra_fields() -> None:
    line = JsonFormatter().format(record(user_id="u-1", session_id="s-1", kid="k-1", n=3))
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "INFO"
    assert out["logger"] == "jwtauth.test"
    assert out["message"] == "user alice did it"
    assert (out["user_id"], out["session_id"], out["kid"], out["n"]) == ("u-1", "s-1", "k-1", 3)
    assert out["ts"].endswith("+00:00")
    assert set(out) == {"ts", "level", "logger", "message", "user_id", "session_id", "kid", "n"}


def test_json_line_keeps_a_traceback_on_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    item = record()
    item.exc_info = exc_info
    line = JsonFormatter().format(item)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc"]


def test_json_fixed_keys_are_not_overridden_by_an_extra() -> None:
    item = record(level=logging.WARNING, logger="x", ts="y")
    out = json.loads(JsonFormatter().format(item))
    assert (out["level"], out["logger"]) == ("WARNING", "jwtauth.test")
    assert out["ts"] != "y"


def test_json_line_renders_values_json_cannot_hold() -> None:
    out = json.loads(JsonFormatter().format(record(path=Path("/x"), roles={"admin"})))
    assert out["path"] == "/x" and out["roles"] == "{'admin'}"


def test_text_line_appends_the_extra_fields() -> None:
    line = TextFormatter().format(record(user_id="u-1", roles=["user", "admin"]))
    assert line.endswith('jwtauth.test: user alice did it user_id="u-1" roles=["user", "admin"]')


def test_format_line_for_output_printed_whatever_the_level() -> None:
    out = json.loads(format_line("json", "listening", url="http://h:1"))
    assert (out["message"], out["url"], out["level"]) == ("listening", "http://h:1", "INFO")
    assert format_line("text", "listening", url="x").endswith('listening url="x"')


@pytest.mark.parametrize("name", ["aiosqlite", "sqlalchemy.engine.Engine"])
def test_protected_loggers_drop_debug_records_even_when_set_to_debug(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Their DEBUG records carry SQL parameters and result rows.
    protect_secret_loggers()
    protect_secret_loggers()  # idempotent
    caplog.set_level(logging.DEBUG, logger=name)
    logger = logging.getLogger(name)
    logger.debug("row %r", ("$argon2id$v=19$secret-hash",))
    logger.info("statement")
    assert [r.getMessage() for r in caplog.records if r.name == name] == ["statement"]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_serve_writes_its_log_in_the_chosen_format_with_existing_fields(
    tmp_path: Path, fmt: str
) -> None:
    env = server_env(tmp_path / "jwtauth.db")
    env.update(JWTAUTH_LOG_LEVEL="INFO", JWTAUTH_LOG_FORMAT=fmt)
    port = free_port()
    live = start_process(["-m", "jwtauth", "serve", "--port", str(port)], env,
                         f"http://127.0.0.1:{port}", tmp_path / "server.log", "/healthz")
    try:
        httpx.post(f"{live.url}/auth/register", json={"username": "alice", "password": PASSWORD})
        login = httpx.post(f"{live.url}/auth/login",
                           json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200
    finally:
        live.stop()
    lines = [line for line in live.log.read_text().splitlines() if line.strip()]
    if fmt == "text":
        assert any("key added" in line and "kid=" in line for line in lines), lines
        assert any("audit login_succeeded" in line and "session_id=" in line for line in lines)
        return
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(p["message"].startswith("jwtauth listening on") for p in parsed)
    assert any(p["logger"].startswith("uvicorn") for p in parsed)  # uvicorn's lines too
    added = next(p for p in parsed if p["message"] == "key added")
    assert added["kid"] and added["alg"] == "ES256"
    login_event = next(p for p in parsed if p.get("event") == "login_succeeded")
    assert login_event["username"] == "alice"
    assert login_event["session_id"] and login_event["user_id"] and login_event["client_ip"]
