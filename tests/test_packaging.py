"""The packaging (issue 10, point 2): the base distribution asks only for what verification
needs, as ranges; constraints.txt pins every package of the server and test install, and
those pins are what this venv runs and what pyproject.toml's ranges admit."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME = PROJECT["name"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            found[canonical(name)] = Version(version)
    return found


def requirements_of(extras: list[str]) -> list[Requirement]:
    specs = list(PROJECT["dependencies"])
    for extra in extras:
        specs += PROJECT["optional-dependencies"][extra]
    return [Requirement(spec) for spec in specs]


def closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the roots need, following installed metadata (markers applied)."""
    seen: set[str] = set()
    todo = [(req, frozenset(req.extras)) for req in roots]
    while todo:
        req, extras = todo.pop()
        name = canonical(req.name)
        if name == canonical(NAME):
            todo += [(r, frozenset(r.extras)) for r in requirements_of(sorted(req.extras))]
            continue
        if name in seen and not extras:
            continue
        seen.add(name)
        for spec in metadata.requires(req.name) or []:
            sub = Requirement(spec)
            wanted = [{**default_environment(), "extra": e} for e in ("", *extras)]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in wanted):
                todo.append((sub, frozenset(sub.extras)))
    return seen


def test_the_base_needs_only_what_verification_needs_as_ranges() -> None:
    base = requirements_of([])
    assert {canonical(r.name) for r in base} == {
        "joserfc", "cryptography", "orjson", "pybase64", "httpx"}
    for requirement in base:
        assert requirement.specifier and not any(
            spec.operator in ("==", "===") for spec in requirement.specifier), requirement


def test_every_package_of_the_server_and_test_install_is_pinned_and_installed_so() -> None:
    pinned = pins()
    needed = closure(requirements_of(["server", "test"]))
    assert needed - set(pinned) == set(), "missing from constraints.txt"
    for name in needed:
        assert Version(metadata.version(name)) == pinned[name], name


def test_the_ranges_of_pyproject_admit_the_pinned_versions() -> None:
    pinned = pins()
    every = requirements_of(list(PROJECT["optional-dependencies"]))
    for requirement in every:
        name = canonical(requirement.name)
        if name != canonical(NAME):
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{requirement} does not admit the pinned {name}=={pinned[name]}")
