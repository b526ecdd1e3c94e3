"""The browser flow (issue 4, point 3): CORS for the configured origins only, security
headers on every response, no caching of anything that carries a token or user data, and
the CSRF defences of the refresh cookie (SameSite=Strict, Path=/auth, Origin and Fetch
Metadata checks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from jwtauth.server.config import Settings
from jwtauth.server.web.page import CONTENT_SECURITY_POLICY as PAGE_CSP

from conftest import BASE_URL, Api, AppFactory

APP = "https://app.example"
EVIL = "https://evil.example"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in ",".join(response.headers.get_list("vary")).split(",")}


async def cors_api(make_api: AppFactory) -> Api:
    return await make_api(allowed_origins=f"{APP}, https://other.example")


# -- CORS ------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_allows_credentials_methods_and_headers(
    make_api: AppFactory,
) -> None:
    api = await cors_api(make_api)
    response = await api.client.options("/auth/login", headers={
        "Origin": APP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization",
    })
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PATCH", "DELETE"}
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    allowed = {h.strip() for h in allowed_headers.split(",")}
    assert allowed == {"authorization", "content-type"}
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in vary(response)


async def test_request_from_an_allowed_origin_names_that_origin_with_credentials(
    make_api: AppFactory,
) -> None:
    api = await cors_api(make_api)
    await api.register()
    for origin in (APP, "https://other.example"):
        response = await api.client.post(
            "/auth/login", json={"username": "alice", "password": "correct-horse-battery-9"},
            headers={"Origin": origin},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in vary(response)
    # Error answers are readable by the allowed app too, with the RFC 6750 reason.
    refused = await api.client.get("/users/me", headers={"Origin": APP})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP
    assert "www-authenticate" in refused.headers["access-control-expose-headers"].lower()


async def test_cookie_refresh_from_an_allowed_origin_is_readable_by_that_origin(
    make_api: AppFactory,
) -> None:
    api = await cors_api(make_api)
    await api.signup()
    response = await api.client.post("/auth/refresh", headers={"Origin": APP})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("origin", [EVIL, "null", "https://app.example.evil.example",
                                    "http://app.example", "https://app.example:8443"])
async def test_other_origins_get_no_cors_headers_and_no_preflight(
    make_api: AppFactory, origin: str
) -> None:
    api = await cors_api(make_api)
    preflight = await api.client.options("/auth/refresh", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert cors_headers(preflight) == {}
    assert preflight.status_code >= 400  # the application's own 405, as JSON
    assert preflight.json()["error"]
    actual = await api.client.get("/posts", headers={"Origin": origin})
    assert actual.status_code == 200
    assert cors_headers(actual) == {}


async def test_without_configured_origins_nothing_is_cross_origin_readable(api: Api) -> None:
    preflight = await api.client.options("/auth/login", headers={
        "Origin": APP, "Access-Control-Request-Method": "POST"})
    assert cors_headers(preflight) == {}
    assert cors_headers(await api.client.get("/posts", headers={"Origin": APP})) == {}


@pytest.mark.parametrize("value", ["*", "null", "https://*.example", "https://app.example/x"])
def test_a_wildcard_or_non_origin_in_allowed_origins_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="allowed origin"):
        Settings(allowed_origins=f"{APP},{value}")


async def test_the_allow_origin_header_is_never_a_wildcard(make_api: AppFactory) -> None:
    api = await cors_api(make_api)
    tokens = await api.signup()
    for origin in (APP, EVIL, "null"):
        for method, path in (("GET", "/posts"), ("GET", "/.well-known/jwks.json"),
                             ("GET", "/users/me"), ("OPTIONS", "/auth/refresh")):
            response = await api.client.request(method, path, headers={
                **tokens.headers, "Origin": origin, "Access-Control-Request-Method": "POST"})
            assert response.headers.get("access-control-allow-origin") in (None, origin)
            assert "*" not in response.headers.get("access-control-allow-origin", "")


# -- security headers ------------------------------------------------------------------


def assert_security_headers(response: httpx.Response, *, csp: str | None = API_CSP,
                            resource_policy: str = "same-origin") -> None:
    headers = response.headers
    expected = {
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": resource_policy,
    }
    for name, value in expected.items():
        assert headers.get_list(name) == [value], (response.request.url.path, name)
    if csp is not None:
        assert headers.get_list("content-security-policy") == [csp]


Call = Callable[[Api], Awaitable[httpx.Response]]


async def _explode(api: Api) -> httpx.Response:
    async def explode() -> None:
        raise RuntimeError("boom")

    api.app.add_api_route("/explode", explode)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        return await client.get("/explode")


async def _me(api: Api) -> httpx.Response:
    tokens = await api.signup()
    return await api.client.get("/users/me", headers=tokens.headers)


async def _too_large(api: Api) -> httpx.Response:
    size = api.service.settings.max_body_bytes + 1
    return await api.client.post("/auth/login", content=b"x" * size,
                                 headers={"content-type": "application/json"})


async def _logout(api: Api) -> httpx.Response:
    tokens = await api.signup()
    return await api.client.post("/auth/logout", headers=tokens.headers)


RESPONSES: dict[str, tuple[int, Call]] = {
    "json 200": (200, lambda api: api.client.get("/posts")),
    "health": (200, lambda api: api.client.get("/healthz")),
    "fast path /users/me": (200, _me),
    "204": (204, _logout),
    "400": (400, lambda api: api.client.post("/auth/login", content=b"{",
                                              headers={"content-type": "application/json"})),
    "401": (401, lambda api: api.client.get("/users/me")),
    "404": (404, lambda api: api.client.get("/no/such/path")),
    "405": (405, lambda api: api.client.put("/auth/login")),
    "413": (413, _too_large),
    "422": (422, lambda api: api.client.post("/auth/login", json={"username": "x"})),
    "500": (500, _explode),
}


@pytest.mark.parametrize("name", list(RESPONSES))
async def test_every_api_response_carries_the_security_headers(api: Api, name: str) -> None:
    status, call = RESPONSES[name]
    response = await call(api)
    assert response.status_code == status, response.text
    assert_security_headers(response)
    assert "strict-transport-security" not in response.headers  # no https public URL


async def test_the_fast_path_and_the_router_send_identical_security_headers(api: Api) -> None:
    from test_fastpath import _via_router

    tokens = await api.signup()
    for path in ("/users/me", "/auth/check"):
        fast = await api.client.get(path, headers=tokens.headers)
        slow = await _via_router(api, path, tokens.headers)
        names = ("x-content-type-options", "referrer-policy", "x-frame-options",
                 "cross-origin-opener-policy", "cross-origin-resource-policy",
                 "content-security-policy", "cache-control")
        assert [fast.headers.get(n) for n in names] == [slow.headers.get(n) for n in names]
        assert_security_headers(fast)


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css"])
async def test_the_sign_in_page_keeps_its_own_policy_and_gets_the_rest(
    api: Api, path: str
) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert_security_headers(response, csp=PAGE_CSP)
    assert "script-src 'self'" in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/openid-configuration"])
async def test_discovery_documents_may_be_fetched_by_other_origins(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert_security_headers(response, resource_policy="cross-origin")
    # Public and cacheable: the route's own Cache-Control wins over the no-store default.
    assert response.headers["cache-control"].startswith("public")


async def test_hsts_only_when_the_public_url_is_https(make_api: AppFactory) -> None:
    secure = await make_api(public_url="https://auth.example")
    for response in (await secure.client.get("/posts"), await secure.client.get("/nope"),
                     await secure.client.get("/")):
        hsts = response.headers["strict-transport-security"]
        assert int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000
    plain = await make_api(public_url="http://127.0.0.1:8000")
    assert "strict-transport-security" not in (await plain.client.get("/posts")).headers


# -- no-store on everything that carries a token or user data ------------------------


async def test_every_token_or_user_data_response_is_no_store(api: Api) -> None:
    login = await api.client.post(
        "/auth/login", json={"username": "alice", "password": "x" * 9})
    register = await api.client.post(
        "/auth/register", json={"username": "alice", "password": "correct-horse-battery-9"})
    tokens = await api.login()
    headers = tokens.headers
    admin = await api.admin()
    responses = {
        # No route marks these; the default of web.headers covers user data all the same.
        "register": register,
        "admin/users": await api.client.get("/admin/users", headers=admin.headers),
        "login 401": login,
        "login": await api.client.post(
            "/auth/login", json={"username": "alice", "password": "correct-horse-battery-9"}),
        "refresh by body": await api.client.post(
            "/auth/refresh", json={"refresh_token": tokens.refresh_token}),
        "refresh by cookie": await api.client.post("/auth/refresh"),
        "refresh 401": await api.client.post("/auth/refresh", json={"refresh_token": "nope"}),
        "refresh 403": await api.client.post("/auth/refresh", headers={"Origin": EVIL}),
        "users/me": await api.client.get("/users/me", headers=headers),
        "auth/check": await api.client.get("/auth/check", headers=headers),
        "sessions": await api.client.get("/auth/sessions", headers=headers),
        "me 401": await api.client.get("/users/me"),
        "admin 403": await api.client.get("/admin/users", headers=headers),
        "logout by cookie": await api.client.post("/auth/logout"),
        "logout-all": await api.client.post("/auth/logout-all", headers=headers),
    }
    for name, response in responses.items():
        assert response.status_code < 500, (name, response.text)
        assert "no-store" in response.headers.get("cache-control", ""), name
    assert responses["login"].json()["access_token"]
    assert "set-cookie" in responses["refresh by cookie"].headers


# -- CSRF on the cookie flow -----------------------------------------------------------


async def test_the_refresh_cookie_is_strict_http_only_secure_and_scoped_to_auth(
    api: Api,
) -> None:
    await api.register()
    response = await api.client.post(
        "/auth/login", json={"username": "alice", "password": "correct-horse-battery-9"})
    attributes = {part.strip() for part in response.headers["set-cookie"].split(";")}
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/auth"} <= attributes
    # Scoped to /auth: the browser never sends it to the blog or any other route.
    cookie = next(iter(api.client.cookies.jar))
    assert cookie.path == "/auth"


CROSS_SITE_CASES = {
    "foreign Origin": {"Origin": EVIL},
    "null Origin": {"Origin": "null"},
    "no Origin, Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site"},
}
SAME_SITE_CASES = {
    "own Origin": {"Origin": "https://jwtauth.test"},
    "no Origin": {},
    "no Origin, Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": "same-origin"},
    "own Origin, Sec-Fetch-Site same-origin": {"Origin": "https://jwtauth.test",
                                               "Sec-Fetch-Site": "same-origin"},
}


@pytest.mark.parametrize("case", list(CROSS_SITE_CASES))
@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
async def test_cross_site_cookie_requests_are_forbidden_and_change_nothing(
    api: Api, path: str, case: str
) -> None:
    tokens = await api.signup()
    response = await api.client.post(path, headers=CROSS_SITE_CASES[case])
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert "set-cookie" not in response.headers
    # Nothing happened: the session lives and the cookie was not rotated.
    assert api.client.cookies.get("refresh_token") == tokens.refresh_token
    assert (await api.client.get("/users/me", headers=tokens.headers)).status_code == 200
    assert (await api.client.post("/auth/refresh")).status_code == 200


@pytest.mark.parametrize("case", list(SAME_SITE_CASES))
async def test_same_origin_cookie_refresh_and_logout_work(api: Api, case: str) -> None:
    tokens = await api.signup()
    headers = SAME_SITE_CASES[case]
    refreshed = await api.client.post("/auth/refresh", headers=headers)
    assert refreshed.status_code == 200, refreshed.text
    logout = await api.client.post("/auth/logout", headers=headers)
    assert logout.status_code == 204, logout.text
    assert (await api.client.get("/users/me", headers=tokens.headers)).status_code == 401


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
async def test_a_cross_site_form_cannot_sign_a_browser_in(api: Api, content_type: str) -> None:
    # Login CSRF: a form on another site may POST without a preflight, but only with these
    # content types; JSON sent under them is refused, so no attacker's cookie gets planted.
    await api.register()
    response = await api.client.post(
        "/auth/login", content=b'{"username": "alice", "password": "correct-horse-battery-9"}',
        headers={"content-type": content_type, "Origin": EVIL},
    )
    assert response.status_code == 422
    assert "set-cookie" not in response.headers
