"""Structured logging: one JSON object per line (or readable text), every ``extra``
field included, and the library loggers that would print secrets kept quiet.

Named ``logs`` so that it never shadows the standard ``logging`` module.

Secret hygiene: at DEBUG, SQLAlchemy logs every result row (password hashes, stored
keys) and aiosqlite logs every call with its parameters. ``protect_secret_loggers``
drops those records wherever this package opens a database, whatever the levels an
application or a test sets; ``create_database`` also turns on SQLAlchemy's
``hide_parameters`` so statement parameters never reach a log line or an exception
message. ``logging_config`` (used by ``jwtauth serve``) additionally keeps these
libraries at WARNING.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

from .terminal import printable, printable_json

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message",  # uvicorn's colored duplicate
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra={...}`` fields of a record."""
    return {
        key: value for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            out.setdefault(key, value)  # the four fixed keys win over an extra of that name
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return printable_json(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # One record, one line: a newline or ESC in a message (a path, a name) is escaped.
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={printable(json.dumps(value, default=str, ensure_ascii=False))}"
            for key, value in extra_fields(record).items()
        )
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {extras}{sep}{tail}"


class _DropDebug(logging.Filter):
    """Drops DEBUG records: those of the protected loggers carry parameters and rows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# DEBUG records of these loggers print SQL parameters or result rows.
_LEAKY_AT_DEBUG = ("aiosqlite", "sqlalchemy.engine.Engine")
# Kept at WARNING by `jwtauth serve`: noise, and close to secrets.
_QUIET = ("alembic", "sqlalchemy", "aiosqlite", "asyncpg", "httpx", "httpcore")


def protect_secret_loggers() -> None:
    """Make the loggers of ``_LEAKY_AT_DEBUG`` drop their DEBUG records (idempotent)."""
    for name in _LEAKY_AT_DEBUG:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropDebug) for f in logger.filters):
            logger.addFilter(_DropDebug())


def logging_config(level: str, fmt: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server. uvicorn applies it in every
    worker process, so workers log exactly like the main process."""
    formatter = {"()": JsonFormatter if fmt == "json" else TextFormatter}
    quiet = max(logging.getLevelName(level), logging.WARNING)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # uvicorn's names: it may set options on "default" and "access".
        "formatters": {"default": formatter, "access": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own loggers go through the root handler in the same format.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            # Access lines are off (serve passes access_log=False): URLs stay out of logs.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            **{
                name: {"level": logging.getLevelName(quiet), "propagate": True}
                for name in _QUIET
            },
        },
    }


def format_line(fmt: LogFormat, message: str, **fields: Any) -> str:
    """One INFO line of the ``jwtauth`` logger in ``fmt``, for output that must appear
    whatever the level (``serve`` saying where it listens)."""
    record = logging.LogRecord("jwtauth", logging.INFO, __file__, 0, message, (), None)
    record.__dict__.update(fields)
    return (JsonFormatter() if fmt == "json" else TextFormatter()).format(record)


def setup_logging(level: str, fmt: LogFormat) -> None:
    """Configure this process's logging (the CLI, before uvicorn takes over)."""
    logging.config.dictConfig(logging_config(level, fmt))
    protect_secret_loggers()


__all__ = [
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "extra_fields",
    "format_line",
    "logging_config",
    "protect_secret_loggers",
    "setup_logging",
]
