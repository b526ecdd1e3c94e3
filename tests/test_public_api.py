"""The public surface (API.md "Library") and the wall between the library and the server.

The library (``jwtauth`` minus ``jwtauth.server``) is what other services install: it may
not import the server, and importing it must not load the server's dependencies. The
server's core (everything but ``web``, ``blog`` and the CLI) imports no web framework.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import jwtauth
import jwtauth.fastapi

PACKAGE = Path(jwtauth.__file__).parent
SERVER = PACKAGE / "server"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# ``python -m jwtauth`` is the server's command by API.md; it is the one library file that
# starts the server, and no other module imports it.
ENTRY_POINTS = {"jwtauth.__main__"}
LIBRARY_FILES = sorted(
    p for p in PACKAGE.glob("*.py") if _module_name(p) not in ENTRY_POINTS
)
SERVER_FILES = sorted(p for p in SERVER.rglob("*.py") if "migrations" not in p.parts)
# The server's parts that may use a web framework: the HTTP layer, the demo resource API
# (built like any outside service) and the CLI that starts uvicorn.
SERVER_WEB = ("jwtauth.server.web", "jwtauth.server.blog", "jwtauth.server.cli")
WEB = ("fastapi", "starlette", "uvicorn")
# What a resource server must not pay for when it imports the library.
SERVER_DEPENDENCIES = (
    "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "argon2", "bcrypt", "redis", "uvicorn",
    "click", "pydantic_settings",
)


def test_all_is_pinned() -> None:
    assert jwtauth.__all__ == [
        "AuthError",
        "Claims",
        "ConfigError",
        "Conflict",
        "Forbidden",
        "InsufficientRole",
        "InvalidCredentials",
        "InvalidGrant",
        "InvalidInput",
        "InvalidToken",
        "MissingToken",
        "NotFound",
        "RateLimited",
        "Verifier",
    ]
    assert jwtauth.__all__ == sorted(jwtauth.__all__)


def test_every_exported_name_exists() -> None:
    for name in jwtauth.__all__:
        assert getattr(jwtauth, name).__module__.startswith("jwtauth."), name


def test_invalid_token_is_an_auth_error() -> None:
    assert issubclass(jwtauth.InvalidToken, jwtauth.AuthError)
    assert issubclass(jwtauth.MissingToken, jwtauth.InvalidToken)
    assert jwtauth.InvalidToken.code == "invalid_token"


def test_every_exported_error_is_an_auth_error_with_a_code() -> None:
    errors = [getattr(jwtauth, n) for n in jwtauth.__all__ if n not in ("Claims", "Verifier")]
    for error in errors:
        assert issubclass(error, jwtauth.AuthError), error
        assert error.code and error.code == error.code.lower(), error


def test_fastapi_module_exports_dependencies() -> None:
    assert {"current_claims", "require_roles"} <= set(jwtauth.fastapi.__all__)
    assert callable(jwtauth.fastapi.current_claims)
    assert callable(jwtauth.fastapi.require_roles)


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module the file imports, anywhere in it (also inside
    functions and ``TYPE_CHECKING`` blocks), with ``from X import y`` counted as X and X.y."""
    tree = ast.parse(path.read_text())
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                assert node.module is not None
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_import_scanner_sees_relative_and_absolute_imports() -> None:
    # The scanner must resolve both kinds, or the wall tests below prove nothing.
    app = imported_modules(SERVER / "web" / "app.py")
    assert "fastapi" in app
    assert "jwtauth.server.config" in app  # from ..config import ...
    assert "jwtauth.errors" in app  # from ...errors import ...
    main = imported_modules(PACKAGE / "__main__.py")
    assert "jwtauth.server.cli" in main


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.stem)
def test_library_module_does_not_import_the_server(path: Path) -> None:
    offending = {name for name in imported_modules(path) if name.startswith("jwtauth.server")}
    assert not offending, f"{_module_name(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.stem)
def test_library_module_imports_no_server_dependency(path: Path) -> None:
    allowed = {"redis"} if path.stem == "events" else set()  # the [redis] extra
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in SERVER_DEPENDENCIES and name.split(".")[0] not in allowed
    }
    assert not offending, f"{_module_name(path)} imports {sorted(offending)}"


def _is_server_web(path: Path) -> bool:
    return _module_name(path).startswith(SERVER_WEB)


@pytest.mark.parametrize(
    "path", [p for p in SERVER_FILES if not _is_server_web(p)],
    ids=lambda p: _module_name(p).removeprefix("jwtauth.server."),
)
def test_server_core_imports_no_web_framework(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in WEB or name.startswith(SERVER_WEB)
        or name in ("jwtauth.fastapi", "jwtauth.starlette")
    }
    assert not offending, f"{_module_name(path)} imports {sorted(offending)}"


def _fresh_interpreter(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


# Run in a fresh interpreter: which of SERVER_DEPENDENCIES get imported, and from where.
# Two libraries the library uses try optional imports of packages that happen to be
# server dependencies when they are installed beside it (cryptography's SSH key support
# tries bcrypt, httpx's command line tries click); those are reported with their importer
# and allowed. A base install (CI's library-only venv) has neither installed.
_PROBE = """
import sys, traceback, json
watched = set(%r)
seen = {}
class Probe:
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if top in watched and top not in seen:
            frames = [f.filename for f in traceback.extract_stack()[:-1]
                      if 'importlib' not in f.filename and not f.filename.startswith('<')]
            seen[top] = frames[-1] if frames else '?'
        return None
sys.meta_path.insert(0, Probe())
import jwtauth, jwtauth.fastapi, jwtauth.starlette, jwtauth.jwks, jwtauth.http
print(json.dumps(seen))
"""
THIRD_PARTY_OPTIONAL = {"bcrypt": "/cryptography/", "click": "/httpx/"}


def test_importing_the_library_loads_no_server_dependency() -> None:
    import json

    seen = json.loads(_fresh_interpreter(_PROBE % (SERVER_DEPENDENCIES,)))
    offending = {
        name: importer for name, importer in seen.items()
        if THIRD_PARTY_OPTIONAL.get(name, "\0") not in importer.replace("\\", "/")
    }
    assert offending == {}


def test_the_import_probe_names_the_importer() -> None:
    import json

    probe = _PROBE.replace("import jwtauth,", "import jwtauth.server.passwords, jwtauth,")
    seen = json.loads(_fresh_interpreter(probe % (SERVER_DEPENDENCIES,)))
    assert seen["argon2"].endswith("jwtauth/server/passwords.py")


def test_importing_the_library_loads_no_server_module() -> None:
    loaded = _fresh_interpreter(
        "import sys, jwtauth, jwtauth.fastapi, jwtauth.starlette, jwtauth.jwks; "
        "print(sorted(m for m in sys.modules if m.startswith('jwtauth.server')))"
    )
    assert loaded == "[]"


def test_the_probe_sees_server_dependencies_when_they_load() -> None:
    # The control for the checks above: importing the server does load them.
    loaded = _fresh_interpreter(
        "import sys, jwtauth.server.web.app; "
        f"print(sorted(m for m in {SERVER_DEPENDENCIES!r} if m in sys.modules))"
    )
    assert "sqlalchemy" in loaded and "argon2" in loaded and "pydantic_settings" in loaded


def test_importing_the_core_verifier_loads_no_web_framework() -> None:
    loaded = _fresh_interpreter(
        "import sys, jwtauth; print('fastapi' in sys.modules or 'starlette' in sys.modules)"
    )
    assert loaded == "False"


@pytest.mark.parametrize(
    "path", [p for p in LIBRARY_FILES + SERVER_FILES if p.read_text().strip()], ids=_module_name
)
def test_module_has_a_docstring(path: Path) -> None:
    assert importlib.import_module(_module_name(path)).__doc__, _module_name(path)
