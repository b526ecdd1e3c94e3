"""The documentation in the repository (issue 12, points 1 and 6): links that stay inside
it and resolve, an HTTP reference that cannot drift from API.md's route tables, and a
Grafana dashboard whose queries name only the metrics API.md promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_MD = ROOT.parent / "shared" / "API.md"  # shared/ lies beside the repository
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]
METHOD_PATH = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)((?:/(?:GET|POST|PUT|PATCH|DELETE))*)"
                         r" (/[^\s,`|)]*)")


# -- links ----------------------------------------------------------------------------------


def without_code(text: str) -> str:
    """Markdown minus fenced blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text: str) -> list[str]:
    body = without_code(text)
    inline = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", body)
    reference = re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", body, flags=re.MULTILINE)
    return inline + reference


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", without_code(text), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_stays_in_the_repository_and_resolves(page: Path) -> None:
    text = page.read_text()
    targets = links(text)
    assert targets or page.name == "CHANGELOG.md", f"{page.name} links nowhere"
    for target in targets:
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE), (
            f"{page.name} links outside the repository: {target}")
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved.read_text()), f"{page.name}: no #{anchor} there"


def test_the_docs_index_lists_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    for item in DOCS.iterdir():
        if item.name != "README.md":
            assert f"]({item.name})" in index, f"docs/README.md does not list {item.name}"


def test_the_readme_points_to_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    for name in ("http.md", "library.md", "deployment.md", "faq.md", "express-comparison.md"):
        assert f"(docs/{name}" in readme, name


# -- the HTTP reference against API.md ---------------------------------------------------------


def routes_of(text: str) -> set[tuple[str, str]]:
    """Every ``METHOD /path`` in a markdown table's first column, or in backticks.

    "POST /admin/users/{id}/disable, /enable" and "GET/PATCH/DELETE /admin/clients/{id}"
    stand for several routes each.
    """
    cells = [line.split("|")[1] for line in text.splitlines()
             if line.startswith("|") and line.count("|") > 2]
    cells += re.findall(r"`([^`\n]+)`", text)
    routes: set[tuple[str, str]] = set()
    for cell in cells:
        for match in METHOD_PATH.finditer(cell):
            methods = [match.group(1), *match.group(2).split("/")[1:]]
            path = match.group(3)
            routes.update((m, path) for m in methods)
            # ", /enable": a sibling of the path just named, with the same methods.
            tail = cell[match.end():]
            for sibling in re.findall(r"^,\s*(/[\w{}-]+)(?=[\s,|]|$)", tail):
                routes.update((m, path.rsplit("/", 1)[0] + sibling) for m in methods)
    return routes


def test_routes_of_reads_the_combined_forms() -> None:
    assert routes_of("| POST /admin/users/{id}/disable, /enable | x |\n") == {
        ("POST", "/admin/users/{id}/disable"), ("POST", "/admin/users/{id}/enable")}
    assert routes_of("| GET /a, GET/PATCH/DELETE /a/{b} | y |\n") == {
        ("GET", "/a"), ("GET", "/a/{b}"), ("PATCH", "/a/{b}"), ("DELETE", "/a/{b}")}


def test_the_http_reference_has_every_route_of_the_contract() -> None:
    if not API_MD.exists():
        unavailable("shared/API.md", f"not at {API_MD}")
    contract = routes_of(API_MD.read_text())
    assert len(contract) > 40, "API.md's tables were not read"
    reference = (DOCS / "http.md").read_text()
    missing = sorted(f"{m} {p}" for m, p in contract if f"{m} {p}" not in reference)
    assert missing == [], f"docs/http.md lacks {missing}"


# -- the Grafana dashboard ---------------------------------------------------------------------

# API.md "Operations": the metrics and their labels; histograms appear as their series.
COUNTERS = {"jwtauth_auth_events_total": {"event", "result"},
            "jwtauth_refresh_total": {"result"}}
HISTOGRAMS = {"jwtauth_password_hash_seconds": set(),
              "jwtauth_http_request_duration_seconds": {"route", "method", "status"}}
GAUGES = {"jwtauth_revocation_staleness_seconds": set()}
TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every series
REFRESH_RESULTS = {"rotated", "grace", "reused", "invalid"}


def series_labels() -> dict[str, set[str]]:
    series: dict[str, set[str]] = {}
    for name, labels in {**COUNTERS, **GAUGES}.items():
        series[name] = labels | TARGET_LABELS
    for name, labels in HISTOGRAMS.items():
        series[f"{name}_bucket"] = labels | TARGET_LABELS | {"le"}
        series[f"{name}_sum"] = series[f"{name}_count"] = labels | TARGET_LABELS
    return series


FUNCTIONS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase",
             "histogram_quantile", "clamp_min", "clamp_max", "topk", "bottomk"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset"}
RANGES = {"$__rate_interval", "$__range", "$__interval"}


def check_promql(expr: str) -> set[str]:
    """Assert the query is well formed and names only our series; return the series."""
    series = series_labels()
    depth = 0
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0, f"unbalanced parentheses: {expr}"
    assert depth == 0, f"unbalanced parentheses: {expr}"
    used: set[str] = set()
    # Selectors: a series name, its label matchers, an optional range.
    for name, matchers, window in re.findall(
        r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}\s*(?:\[([^\]]+)\])?", expr
    ):
        assert name in series, f"unknown series {name!r} in {expr}"
        used.add(name)
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
            assert label in series[name], f"{name} has no label {label!r}: {expr}"
            if name == "jwtauth_refresh_total" and label == "result" and op == "=":
                assert value in REFRESH_RESULTS, value
        assert not window or window in RANGES or re.fullmatch(r"\d+[smhd]", window), window
    bare = re.sub(r"\{[^}]*\}", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", expr))
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    grouped = set()
    for labels in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", bare):
        for label in (part.strip() for part in labels.split(",")):
            grouped.add(label)
            assert label in set().union(*series.values()), f"unknown label {label!r}: {expr}"
    for word in re.findall(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)", bare):
        if word in FUNCTIONS or word in KEYWORDS or word in grouped:
            continue
        assert word in series, f"{word!r} is neither a function nor one of our series: {expr}"
        used.add(word)
    # Counters and histogram series only under rate/increase; a gauge never.
    for function, name in re.findall(r"\b(rate|irate|increase)\(\s*([a-zA-Z_:][\w:]*)", expr):
        assert name in COUNTERS or name.endswith(("_bucket", "_sum", "_count")), (
            f"{function} over {name}, which is not a counter: {expr}")
    if "histogram_quantile" in expr:
        assert "_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr), expr
    return used


def test_check_promql_refuses_what_it_should() -> None:
    for bad in ("sum(rate(http_requests_total[5m]))",  # not ours
                "rate(jwtauth_revocation_staleness_seconds[5m])",  # rate of a gauge
                'sum(rate(jwtauth_refresh_total{route="/x"}[5m]))',  # no such label
                "sum(rate(jwtauth_refresh_total[5m])",  # unbalanced
                "histogram_quantile(0.9, rate(jwtauth_password_hash_seconds_bucket[5m]))"):
        with pytest.raises(AssertionError):
            check_promql(bad)
    assert check_promql("sum by (result) (rate(jwtauth_refresh_total[$__rate_interval]))") == {
        "jwtauth_refresh_total"}


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


def test_grafana_dashboard_imports_and_queries_only_our_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 30
    assert dashboard["title"] and dashboard["uid"]
    (source,) = dashboard["__inputs"]
    assert source["type"] == "datasource" and source["pluginId"] == "prometheus"
    variable = "${" + source["name"] + "}"
    panels = panels_of(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    used: set[str] = set()
    queries = 0
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == variable, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            used |= check_promql(target["expr"])
            queries += 1
    for variable_def in dashboard["templating"]["list"]:
        query = variable_def["query"]["query"]
        inner = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert inner and inner.group(1) in series_labels(), query
        assert inner.group(2) in series_labels()[inner.group(1)], query
    # Every promised metric has a panel.
    for name in [*COUNTERS, *GAUGES]:
        assert name in used, f"no panel shows {name}"
    for name in HISTOGRAMS:
        assert {f"{name}_bucket", f"{name}_count"} & used, f"no panel shows {name}"
    assert queries >= 10
