"""Check the library-only venv (``make test-library``): the base package and the test
tools are installed, and not one distribution that only an extra brings.

Run with that venv's interpreter. It reads the extras from pyproject.toml, so a new server
dependency is covered the day it is added; it prints what is installed and its size.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
    assert match, spec
    return canonical(match.group(0))


def tools_closure(installed: set[str]) -> set[str]:
    """The test tools and everything they pull in (pytest brings packaging, say): those
    are in the venv for the tools, not because the base package asked for them."""
    seen: set[str] = set()
    todo = [name for name in TEST_TOOLS if name in installed]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            if "extra ==" in spec:
                continue  # an optional extra of the tool, not installed for it
            dependency = requirement_name(spec)
            if dependency in installed:
                todo.append(dependency)
    return seen


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {requirement_name(spec) for spec in project["dependencies"]}
    extras = {
        requirement_name(spec)
        for specs in project["optional-dependencies"].values() for spec in specs
    }
    forbidden = extras - base - TEST_TOOLS - {canonical(project["name"])}
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    missing = sorted((base | {canonical(project["name"])}) - set(installed))
    leaked = sorted(forbidden & (set(installed) - tools_closure(set(installed))))
    size = sum(f.stat().st_size for f in Path(sys.prefix).rglob("*") if f.is_file())
    print(f"library venv {sys.prefix}: {len(installed)} distributions, {size / 2**20:.0f} MiB")
    print("  " + " ".join(f"{name}=={version}" for name, version in sorted(installed.items())))
    if missing:
        print(f"FAIL: the base install lacks {missing}")
    if leaked:
        print(f"FAIL: the base install pulled in what only an extra should: {leaked}")
    return 1 if missing or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
