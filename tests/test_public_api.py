"""The public surface (API.md "Library") and the rule that the core has no web framework."""

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
CORE_MODULES = [
    "claims", "errors", "keys", "tokens", "verifier", "passwords", "sessions", "revocation",
    "ratelimit", "config", "service",
]
WEB = ("fastapi", "starlette")
WEB_INSIDE = ("jwtauth.web", "jwtauth.fastapi")


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


def imported_modules(module: str) -> set[str]:
    """Absolute names of every module ``jwtauth.<module>`` imports, anywhere in the file."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "jwtauth" if node.level == 1 else "<outside>"
                target = f"{base}.{node.module}" if node.module else base
                found.add(target)
                # "from . import web" names a module in its alias.
                found.update(f"{target}.{alias.name}" for alias in node.names)
            else:
                assert node.module is not None
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_import_scanner_sees_the_web_layer() -> None:
    # The scanner must notice both kinds of import, or the test below proves nothing.
    app_imports = imported_modules("fastapi")
    assert "fastapi" in app_imports and "jwtauth.web.errors" in app_imports


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_web_framework(module: str) -> None:
    offending = {
        name for name in imported_modules(module)
        if name.split(".")[0] in WEB or name.startswith(WEB_INSIDE)
    }
    assert not offending, f"jwtauth.{module} imports {sorted(offending)}"


def test_importing_the_core_loads_no_web_framework() -> None:
    imports = ", ".join(f"jwtauth.{name}" for name in CORE_MODULES)
    code = (
        f"import {imports}, sys; "
        "print('fastapi' in sys.modules or 'starlette' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_importing_the_fastapi_glue_does_load_fastapi() -> None:
    # The control for the check above: the probe does see fastapi when it is imported.
    result = subprocess.run(
        [sys.executable, "-c",
         "import jwtauth.fastapi, sys; print('fastapi' in sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_has_a_docstring(module: str) -> None:
    assert importlib.import_module(f"jwtauth.{module}").__doc__
