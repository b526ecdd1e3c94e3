"""/docs and /redoc in Debian's Chromium with every request off this machine refused
(issue 12, point 5): the pages load everything from the server, list its operations, and
break no rule of their Content-Security-Policy.

A real `jwtauth serve` process (conftest's ``live_server``); the browser's requests to any
host but loopback are aborted and recorded, and so is every policy violation, both from
the console and from ``securitypolicyviolation`` events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

# Debian's Chromium, launched the way the sign-in page's browser tests launch it.
from test_browser import browser  # noqa: F401 (a fixture)

try:
    from playwright.sync_api import Browser, Page, Route, expect
except ImportError:  # the test extra is not installed; the browser fixture says so
    pass

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Runs before any page script: every violation the page meets becomes a console line.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => console.error(
  'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' at ' + e.sourceFile +
  ':' + e.lineNumber));
"""


@dataclass
class Offline:
    page: Page
    refused: list[str] = field(default_factory=list)  # requests that tried to leave
    errors: list[str] = field(default_factory=list)  # console errors, page errors

    def check_clean(self) -> None:
        assert self.refused == [], f"the page reached for other hosts: {self.refused}"
        violations = [e for e in self.errors if "Content Security Policy" in e or "CSP" in e]
        assert violations == [], violations
        assert self.errors == [], self.errors


@pytest.fixture
def offline(browser: Browser) -> Iterator[Offline]:  # noqa: F811 (the fixture above)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    state = Offline(page)

    def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            state.refused.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: state.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: state.errors.append(f"page error: {exc}"))
    yield state
    context.close()


def test_swagger_ui_lists_the_operations_and_tries_one(live_server: Any,
                                                       offline: Offline) -> None:
    page = offline.page
    page.goto(live_server.url + "/docs")
    for path in ("/auth/login", "/auth/refresh", "/auth/check", "/.well-known/jwks.json"):
        expect(page.locator(".opblock-summary-path", has_text=re.compile(f"^{re.escape(path)}$"))
               ).to_be_visible()
    # "Try it out" sends its request from the page: connect-src 'self' lets it through.
    operation = page.locator(".opblock", has=page.locator(".opblock-summary-path",
                                                           has_text=re.compile("^/healthz$")))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/healthz") as answer:
        operation.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    expect(operation.locator(".live-responses-table tr.response .response-col_status")
           ).to_have_text("200")
    offline.check_clean()


def test_redoc_lists_the_operations_and_searches(live_server: Any, offline: Offline) -> None:
    page = offline.page
    page.goto(live_server.url + "/redoc")
    expect(page.get_by_text("/auth/login", exact=True).first).to_be_attached()
    expect(page.get_by_role("heading", name="Login")).to_be_visible()
    # The search runs in a worker made from a Blob (worker-src blob:).
    page.get_by_placeholder("Search...").fill("logout")
    expect(page.locator("[role=search] [role=menuitem], [data-role='search:results'] li, "
                        "label[role=menuitem]").first).to_be_visible()
    offline.check_clean()
