"""The sign-in page at GET / in a real browser (Debian's Chromium driven by Playwright).

A real server process per module, with a 4 s access token, so that a test can outlive one
(a real browser runs on real time: the waits below are the token lifetime, kept short).
Every test ends by checking the pattern itself: no token where page scripts can read it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PASSWORD, unavailable

try:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright
except ImportError:  # the test extra is not installed
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ACCESS_TTL = 4  # seconds; the minimum is 1
OUTPUT = Path(__file__).resolve().parents[1] / "output"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m jwtauth serve` with the page's recommended settings and a short TTL."""
    workdir = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env.update(
        JWTAUTH_DATABASE_URL=f"sqlite:///{workdir / 'e2e.db'}",
        JWTAUTH_COOKIE_SECURE="false",  # plain-HTTP localhost only
        JWTAUTH_ACCESS_TTL=f"{ACCESS_TTL}s",
        JWTAUTH_CLOCK_SKEW="0",  # else an expired token is still accepted for 30 s
        JWTAUTH_REFRESH_REUSE_GRACE="10",
        JWTAUTH_ARGON2_TIME_COST="1",
        JWTAUTH_ARGON2_MEMORY_COST="8192",
    )
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jwtauth", "serve", "--port", str(port)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start: {(workdir / 'server.log').read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        unavailable("Playwright for Python", "not installed: pip install -e '.[test]'")
    if not CHROMIUM.exists():
        unavailable(f"Chromium at {CHROMIUM}", "not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        # Debian's Chromium, never `playwright install`'s download.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page plus what it did on the wire and what the browser complained about."""

    page: Page
    base: str
    traffic: list[tuple[str, str, int]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def statuses(self, method: str, path: str) -> list[int]:
        return [s for m, p, s in self.traffic if m == method and p == path]

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)


def _context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


context = pytest.fixture(_context, name="context")
other_context = pytest.fixture(_context, name="other_context")  # another device, same user


def open_tab(
    context: BrowserContext, base: str, *, locks: bool = True, frozen_timers: bool = False
) -> Tab:
    page = context.new_page()
    tab = Tab(page, base)
    if not locks:  # a browser without Web Locks: only the server's grace window helps
        page.add_init_script("Object.defineProperty(navigator, 'locks', {value: undefined})")
    if frozen_timers:
        page.clock.install()
    page.on("response", lambda r: tab.traffic.append(
        (r.request.method, r.url.removeprefix(base), r.status)))
    page.on("console", lambda m: tab.console.append(m.text))
    page.goto(f"{base}/")
    expect(tab.by("loading")).to_be_hidden()
    if frozen_timers:  # the page's timers stop here; real time and the server go on
        page.clock.pause_at(page.evaluate("Date.now()") + 10)
    return tab


@pytest.fixture
def tab(context: BrowserContext, server: str) -> Tab:
    return open_tab(context, server)


def outlive_access_token(tab: Tab) -> None:
    tab.page.wait_for_timeout((ACCESS_TTL + 1.5) * 1000)


def new_name() -> str:
    return "u" + uuid.uuid4().hex[:12]


def submit(tab: Tab, form: str, **fields: str) -> None:
    scope = tab.by(form)
    for name, value in fields.items():
        scope.locator(f"[name={name}]").fill(value)
    scope.locator("button[type=submit]").click()


def register(tab: Tab) -> str:
    name = new_name()
    submit(tab, "register-form", username=name, password=PASSWORD)
    expect(tab.by("who-name")).to_have_text(name)
    return name


def sign_in(tab: Tab, name: str) -> None:
    submit(tab, "login-form", username=name, password=PASSWORD)
    expect(tab.by("who-name")).to_have_text(name)


def create_post(tab: Tab, title: str) -> None:
    submit(tab, "post-form", title=title, content=f"Content of {title}.")
    expect(tab.by("post").filter(has_text=title)).to_have_count(1)


def claim(tab: Tab, name: str) -> Any:
    return json.loads(tab.by("claims").text_content())[name]


def expect_signed_out(tab: Tab) -> None:
    expect(tab.by("signed-out")).to_be_visible()
    expect(tab.by("signed-in")).to_be_hidden()
    expect(tab.page.locator("input[name=username]").first).to_be_visible()


def assert_nothing_readable(tab: Tab) -> None:
    """The pattern: page scripts can reach neither token, and the page broke no CSP rule."""
    page = tab.page
    assert page.evaluate("localStorage.length === 0 && sessionStorage.length === 0") is True
    assert page.evaluate("document.cookie") == ""
    html = page.content()
    assert "eyJ" not in html  # no JWT (base64url of '{"') in the DOM
    for cookie in page.context.cookies():
        if cookie["name"] == "refresh_token":
            assert cookie["httpOnly"] is True
            assert cookie["path"] == "/auth"
            assert cookie["value"] not in html
    assert [m for m in tab.console if "Content Security Policy" in m] == []


def refresh_cookie(tab: Tab) -> dict[str, Any] | None:
    return next((c for c in tab.page.context.cookies() if c["name"] == "refresh_token"), None)


# ---- the page and its headers ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css"])
def test_page_and_assets_carry_a_strict_csp(server: str, path: str) -> None:
    response = httpx.get(f"{server}{path}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# ---- flows ----------------------------------------------------------------------------------


def test_forms_have_stable_fields_for_password_managers(tab: Tab) -> None:
    for form, autocomplete in (("login-form", "current-password"),
                               ("register-form", "new-password")):
        scope = tab.by(form)
        expect(scope.locator("input[name=username]")).to_have_attribute("autocomplete", "username")
        password = scope.locator("input[name=password]")
        expect(password).to_have_attribute("type", "password")
        expect(password).to_have_attribute("autocomplete", autocomplete)
        expect(scope.locator("button[type=submit]")).to_have_count(1)
    assert_nothing_readable(tab)


def test_sign_up_shows_the_claims_and_a_live_countdown(tab: Tab) -> None:
    expect_signed_out(tab)
    assert refresh_cookie(tab) is None
    name = register(tab)
    assert claim(tab, "preferred_username") == name
    assert claim(tab, "exp") - claim(tab, "iat") == ACCESS_TTL
    assert set(claim(tab, "roles")) == {"user"}
    countdown = tab.by("countdown")
    expect(countdown).to_have_text(re.compile(rf"^[0-{ACCESS_TTL}] s$"))
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first, timeout=3000)  # it ticks
    expect(tab.by("session")).to_have_count(1)
    cookie = refresh_cookie(tab)
    assert cookie is not None and cookie["sameSite"] == "Strict"
    assert_nothing_readable(tab)


def test_sign_in_and_create_a_post(tab: Tab) -> None:
    name = "alice"
    body = {"username": name, "password": PASSWORD}
    assert httpx.post(f"{tab.base}/auth/register", json=body).status_code == 201
    sign_in(tab, name)
    create_post(tab, "Hello from the browser")
    expect(tab.by("post").filter(has_text="Hello from the browser")).to_contain_text(f"by {name}")
    assert tab.statuses("POST", "/posts") == [201]
    expect(tab.by("error")).to_be_hidden()
    OUTPUT.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(OUTPUT / "signed-in.png"), full_page=True)
    assert_nothing_readable(tab)


def test_wrong_password_shows_the_api_message(tab: Tab) -> None:
    name = new_name()
    body = {"username": name, "password": PASSWORD}
    assert httpx.post(f"{tab.base}/auth/register", json=body).status_code == 201
    api = httpx.post(f"{tab.base}/auth/login", json={"username": name, "password": "wrong-pw-1"})
    assert api.status_code == 401
    submit(tab, "login-form", username=name, password="wrong-pw-2")
    expect(tab.by("error")).to_have_text(api.json()["message"])
    expect_signed_out(tab)
    assert_nothing_readable(tab)


def test_taken_username_shows_the_api_message(tab: Tab) -> None:
    name = new_name()
    body = {"username": name, "password": PASSWORD}
    assert httpx.post(f"{tab.base}/auth/register", json=body).status_code == 201
    api = httpx.post(f"{tab.base}/auth/register", json=body)
    assert api.status_code == 409
    submit(tab, "register-form", **body)
    expect(tab.by("error")).to_have_text(api.json()["message"])
    expect_signed_out(tab)
    assert_nothing_readable(tab)


def test_reload_keeps_the_user_signed_in_through_the_cookie(tab: Tab) -> None:
    name = register(tab)
    create_post(tab, f"Before reload {name}")
    tab.page.reload()
    expect(tab.by("who-name")).to_have_text(name)
    expect(tab.by("post").filter(has_text=f"Before reload {name}")).to_have_count(1)
    assert tab.statuses("POST", "/auth/refresh") == [401, 200]  # no cookie yet, then cookie
    create_post(tab, f"After reload {name}")
    assert_nothing_readable(tab)


def test_outliving_the_access_token_keeps_working(tab: Tab) -> None:
    name = register(tab)
    first_jti = claim(tab, "jti")
    outlive_access_token(tab)
    create_post(tab, f"Later {name}")
    assert claim(tab, "jti") != first_jti
    assert 200 in tab.statuses("POST", "/auth/refresh")  # the silent refresh before expiry
    expect(tab.by("error")).to_be_hidden()
    tab.page.reload()  # the rotated cookie still restores the session
    expect(tab.by("who-name")).to_have_text(name)
    expect(tab.by("session")).to_have_count(1)
    assert_nothing_readable(tab)


def test_a_401_refreshes_and_retries_the_request_once(context: BrowserContext, server: str) -> None:
    tab = open_tab(context, server, frozen_timers=True)  # no silent refresh can run
    name = register(tab)
    outlive_access_token(tab)
    create_post(tab, f"Retried {name}")
    assert tab.statuses("POST", "/posts") == [401, 201]
    assert tab.statuses("POST", "/auth/refresh") == [401, 200]  # at load, then on the 401
    expect(tab.by("error")).to_be_hidden()
    assert_nothing_readable(tab)


@pytest.mark.parametrize("locks", [True, False], ids=["web-locks", "grace-window-only"])
def test_two_tabs_refreshing_together_both_stay_signed_in(
    context: BrowserContext, server: str, locks: bool
) -> None:
    first = open_tab(context, server, locks=locks, frozen_timers=True)
    name = register(first)
    second = open_tab(context, server, locks=locks, frozen_timers=True)
    expect(second.by("who-name")).to_have_text(name)
    # Both silent refreshes fire within milliseconds, presenting the same cookie.
    with (
        first.page.expect_response(f"{server}/auth/refresh") as one,
        second.page.expect_response(f"{server}/auth/refresh") as two,
    ):
        first.page.clock.fast_forward(ACCESS_TTL * 1000)
        second.page.clock.fast_forward(ACCESS_TTL * 1000)
    assert (one.value.status, two.value.status) == (200, 200)
    for tab in (first, second):
        tab.page.clock.resume()
    # And both reload at once, each restoring its session through the shared cookie.
    with (
        first.page.expect_response(f"{server}/auth/refresh") as one,
        second.page.expect_response(f"{server}/auth/refresh") as two,
    ):
        first.page.evaluate("setTimeout(() => location.reload(), 0)")
        second.page.evaluate("setTimeout(() => location.reload(), 0)")
    assert (one.value.status, two.value.status) == (200, 200)
    for tab in (first, second):
        expect(tab.by("who-name")).to_have_text(name)
    outlive_access_token(first)  # both tabs go on refreshing on their own timers
    for tab in (first, second):
        create_post(tab, f"From a tab {uuid.uuid4().hex[:6]}")
        expect(tab.by("session")).to_have_count(1)
        assert_nothing_readable(tab)


def test_sign_out_ends_the_session_for_good(tab: Tab) -> None:
    register(tab)
    tab.by("logout").click()
    expect_signed_out(tab)
    assert tab.statuses("POST", "/auth/logout") == [204]
    assert refresh_cookie(tab) is None
    tab.page.reload()
    expect_signed_out(tab)
    expect(tab.by("error")).to_be_hidden()
    assert_nothing_readable(tab)


def test_sign_out_everywhere_signs_out_the_other_browser(
    tab: Tab, other_context: BrowserContext
) -> None:
    name = register(tab)
    other = open_tab(other_context, tab.base, frozen_timers=True)  # it learns on its next call
    sign_in(other, name)
    tab.by("logout-all").click()
    expect_signed_out(tab)
    assert tab.statuses("POST", "/auth/logout-all") == [204]
    submit(other, "post-form", title="Too late", content="Signed out elsewhere.")
    expect_signed_out(other)
    expect(other.by("error")).to_have_text("Your session has ended; please sign in again.")
    assert other.statuses("POST", "/posts") == [401]
    assert other.statuses("POST", "/auth/refresh") == [401, 401]  # at load, then refused
    for each in (tab, other):
        assert_nothing_readable(each)


def test_ending_another_session_signs_that_browser_out(
    tab: Tab, other_context: BrowserContext
) -> None:
    name = register(tab)
    other = open_tab(other_context, tab.base)
    sign_in(other, name)
    tab.page.reload()
    expect(tab.by("session")).to_have_count(2)
    tab.by("session").filter(has_not_text="This browser").get_by_test_id("end-session").click()
    expect(tab.by("session")).to_have_count(1)
    expect(tab.by("session")).to_contain_text("This browser")
    ended = [status for method, path, status in tab.traffic if method == "DELETE"]
    assert ended == [204]
    other.page.reload()
    expect_signed_out(other)
    expect(tab.by("who-name")).to_have_text(name)
    for each in (tab, other):
        assert_nothing_readable(each)


def test_the_csp_refuses_an_injected_inline_handler(tab: Tab) -> None:
    with tab.page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        tab.page.evaluate(
            """document.body.insertAdjacentHTML('beforeend',
                   '<img src="data:," onerror="window.pwned = 1" onload="window.pwned = 1">')"""
        )
    tab.page.wait_for_function("document.querySelector('img').complete")
    assert tab.page.evaluate("window.pwned") is None


def test_a_post_title_is_shown_as_text_never_as_markup(tab: Tab) -> None:
    register(tab)
    title = "<img src=x onerror=\"document.title='pwned'\">"
    create_post(tab, title)
    expect(tab.by("post").filter(has_text=title).locator("h3")).to_have_text(title)
    assert tab.by("posts").locator("img").count() == 0
    assert tab.page.title() == "jwtauth"
    assert_nothing_readable(tab)
