"""Fixtures of the library's tests, which import nothing of the server.

They run twice in CI: in the full venv with the rest of the suite, and in a venv holding
the base package alone (``make test-library`` sets ``JWTAUTH_TEST_BASE_ONLY=1``). Tests of
an integration that needs an extra (fastapi, starlette) call ``needs_extra``: they skip in
that base-only venv and nowhere else, so a broken install cannot hide them in the full one.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from .kit import Clock

BASE_ONLY = os.environ.get("JWTAUTH_TEST_BASE_ONLY") == "1"


def needs_extra(module: str, extra: str) -> ModuleType:
    """``module``, imported; in the base-only venv, a skip of the calling test module."""
    if BASE_ONLY:
        return pytest.importorskip(module, reason=f"the [{extra}] extra is not installed")
    return importlib.import_module(module)


@pytest.fixture
def clock() -> Clock:
    return Clock()
