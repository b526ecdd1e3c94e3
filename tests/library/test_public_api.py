"""The public surface (API.md "Library") and the wall between the library and the server.

The library (``jwtauth`` minus ``jwtauth.server``) is what other services install: it may
not import the server, importing it must not load the server's dependencies, and its core
imports with no extra installed. The integrations' own surface is in test_fastapi.py and
test_starlette.py; the server's side of the wall, in tests/test_public_api.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jwtauth

from .conftest import BASE_ONLY
from .imports import (
    PACKAGE,
    SERVER_DEPENDENCIES,
    fresh_interpreter,
    imported_modules,
    module_name,
    probe_imports,
)

# ``python -m jwtauth`` is the server's command by API.md; it is the one library file that
# starts the server, and no other module imports it.
ENTRY_POINTS = {"jwtauth.__main__"}
LIBRARY_FILES = sorted(p for p in PACKAGE.glob("*.py") if module_name(p) not in ENTRY_POINTS)
# Each extra's modules, and the library modules that may import them.
EXTRAS = {"fastapi": {"jwtauth.fastapi"}, "starlette": {"jwtauth.fastapi", "jwtauth.starlette"},
          "redis": {"jwtauth.events"}, "pydantic": {"jwtauth.fastapi"}}
CORE = ("jwtauth", "jwtauth.verifier", "jwtauth.jwks", "jwtauth.http", "jwtauth.bearer",
        "jwtauth.keys", "jwtauth.tokens", "jwtauth.revocation", "jwtauth.claims")
INTEGRATIONS = () if BASE_ONLY else ("jwtauth.fastapi", "jwtauth.starlette")


def test_all_is_pinned() -> None:
    assert jwtauth.__all__ == [
        "AuthError",
        "Claims",
        "ConfigError",
        "Conflict",
        "Forbidden",
        "InsufficientRole",
        "InsufficientScope",
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


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_import_scanner_sees_relative_and_absolute_imports() -> None:
    # The scanner must resolve both kinds, or the wall tests below prove nothing.
    integration = imported_modules(PACKAGE / "fastapi.py")
    assert "fastapi" in integration and "fastapi.security.base" in integration
    assert "jwtauth.bearer" in integration  # from .bearer import ...
    assert "jwtauth.jwks.JWKSCache" in imported_modules(PACKAGE / "verifier.py")  # in a function
    assert "jwtauth.server.cli" in imported_modules(PACKAGE / "__main__.py")


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.stem)
def test_library_module_does_not_import_the_server(path: Path) -> None:
    offending = {name for name in imported_modules(path) if name.startswith("jwtauth.server")}
    assert not offending, f"{module_name(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.stem)
def test_library_module_imports_no_server_dependency(path: Path) -> None:
    allowed = {"redis"} if path.stem == "events" else set()  # the [redis] extra
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in SERVER_DEPENDENCIES and name.split(".")[0] not in allowed
    }
    assert not offending, f"{module_name(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.stem)
def test_only_the_integrations_import_an_extra(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if module_name(path) not in EXTRAS.get(name.split(".")[0], {module_name(path)})
    }
    assert not offending, f"{module_name(path)} imports {sorted(offending)}"


def test_the_core_imports_with_no_extra_installed() -> None:
    # Every extra's modules made unimportable, as in a base install: the core still loads.
    hidden = (*EXTRAS, *SERVER_DEPENDENCIES)
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {hidden!r}:\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        f"import {', '.join(CORE)}\n"
        "for extra in ('fastapi', 'starlette'):\n"
        "    try:\n"
        "        __import__('jwtauth.' + extra)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        print(exc.name, '|', exc)\n"
    )
    assert fresh_interpreter(code).splitlines() == [
        "fastapi | jwtauth.fastapi needs 'fastapi': pip install 'jwtauth-kit[fastapi]'",
        "starlette | jwtauth.starlette needs 'starlette': pip install 'jwtauth-kit[starlette]'",
    ]


def test_importing_the_library_loads_no_server_dependency() -> None:
    seen = probe_imports(f"import {', '.join(CORE + INTEGRATIONS)}", SERVER_DEPENDENCIES)
    optional = {"bcrypt": "/cryptography/", "click": "/httpx/"}  # see imports.probe_imports
    offending = {
        name: importer for name, importer in seen.items()
        if optional.get(name, "\0") not in importer.replace("\\", "/")
    }
    assert offending == {}


def test_importing_the_library_loads_no_server_module() -> None:
    loaded = fresh_interpreter(
        f"import sys, {', '.join(CORE + INTEGRATIONS)}; "
        "print(sorted(m for m in sys.modules if m.startswith('jwtauth.server')))"
    )
    assert loaded == "[]"


def test_importing_the_core_verifier_loads_no_web_framework() -> None:
    loaded = fresh_interpreter(
        f"import sys, {', '.join(CORE)}; "
        "print('fastapi' in sys.modules or 'starlette' in sys.modules)"
    )
    assert loaded == "False"


@pytest.mark.parametrize("path", [p for p in LIBRARY_FILES if p.read_text().strip()],
                         ids=lambda p: p.stem)
def test_module_has_a_docstring(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), module_name(path)
