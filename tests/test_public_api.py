"""The server's side of the wall (the library's is tests/library/test_public_api.py): the
server's core (everything but ``web``, ``blog`` and the CLI) imports no web framework, and
the import probe the library's tests trust does see server dependencies load."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from library.imports import (
    SERVER,
    SERVER_DEPENDENCIES,
    imported_modules,
    module_name,
    probe_imports,
)

SERVER_FILES = sorted(p for p in SERVER.rglob("*.py") if "migrations" not in p.parts)
# The server's parts that may use a web framework: the HTTP layer, the demo resource API
# (built like any outside service) and the CLI that starts uvicorn.
SERVER_WEB = ("jwtauth.server.web", "jwtauth.server.blog", "jwtauth.server.cli")
WEB = ("fastapi", "starlette", "uvicorn")


def test_import_scanner_sees_the_servers_relative_imports() -> None:
    app = imported_modules(SERVER / "web" / "app.py")
    assert "fastapi" in app
    assert "jwtauth.server.config" in app  # from ..config import ...
    assert "jwtauth.errors" in app  # from ...errors import ...


def _is_server_web(path: Path) -> bool:
    return module_name(path).startswith(SERVER_WEB)


@pytest.mark.parametrize(
    "path", [p for p in SERVER_FILES if not _is_server_web(p)],
    ids=lambda p: module_name(p).removeprefix("jwtauth.server."),
)
def test_server_core_imports_no_web_framework(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in WEB or name.startswith(SERVER_WEB)
        or name in ("jwtauth.fastapi", "jwtauth.starlette")
    }
    assert not offending, f"{module_name(path)} imports {sorted(offending)}"


def test_the_import_probe_names_the_importer() -> None:
    seen = probe_imports("import jwtauth.server.passwords", SERVER_DEPENDENCIES)
    assert seen["argon2"].endswith("jwtauth/server/passwords.py")


def test_the_probe_sees_server_dependencies_when_they_load() -> None:
    # The control for the library's checks: importing the server does load them.
    seen = probe_imports("import jwtauth.server.web.app", SERVER_DEPENDENCIES)
    assert {"sqlalchemy", "argon2", "pydantic_settings"} <= set(seen)


@pytest.mark.parametrize("path", [p for p in SERVER_FILES if p.read_text().strip()],
                         ids=module_name)
def test_module_has_a_docstring(path: Path) -> None:
    assert importlib.import_module(module_name(path)).__doc__, module_name(path)
