"""Which modules a source file imports, read from its syntax tree (no import runs): the
walls between the library, the server and the web frameworks are checked with it, by
tests/library/test_public_api.py and tests/test_public_api.py."""

from __future__ import annotations

import ast
from pathlib import Path

import jwtauth

PACKAGE = Path(jwtauth.__file__).parent
SERVER = PACKAGE / "server"
# What a resource server must not pay for when it imports the library.
SERVER_DEPENDENCIES = (
    "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "argon2", "bcrypt", "redis", "uvicorn",
    "click", "pydantic_settings", "zxcvbn",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module the file imports, anywhere in it (also inside
    functions and ``TYPE_CHECKING`` blocks), with ``from X import y`` counted as X and X.y."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
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


def fresh_interpreter(code: str) -> str:
    """What ``code`` prints, run in a new interpreter (nothing imported yet)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


# Which of ``watched`` get imported by the import statement, and from which file. Two
# libraries the library uses try optional imports of packages that happen to be server
# dependencies when they are installed beside it (cryptography's SSH key support tries
# bcrypt, httpx's command line tries click); callers allow those by their importer.
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
%s
print(json.dumps(seen))
"""


def probe_imports(statement: str, watched: tuple[str, ...]) -> dict[str, str]:
    """``{top-level module: the file that imported it}`` for each of ``watched`` that
    running ``statement`` in a fresh interpreter imports."""
    import json

    seen: dict[str, str] = json.loads(fresh_interpreter(_PROBE % (watched, statement)))
    return seen
