"""/docs and /redoc served from the package (issue 12, point 5), checked in process: the
pages' policies, the files they load, and the vendored copies against VENDORED.json.

The same pages in a real browser with the network cut off: tests/e2e/test_docs_offline.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.resources import files

import pytest

from jwtauth.server.web.docs import ASSET_PREFIX, ASSETS

from conftest import Api

STATIC = files("jwtauth.server.web").joinpath("static", "docs")
OURS = {"swagger-init.js", "redoc-init.js", "VENDORED.json", "README.md"}


def policy_of(header: str) -> dict[str, list[str]]:
    directives = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def referenced(page: bytes) -> list[str]:
    return re.findall(rb'(?:src|href)="([^"]+)"', page)  # type: ignore[return-value]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_pages_name_no_origin_but_their_own(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = policy_of(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["form-action"] == ["'none'"]
    # No host at all: every source is a quoted keyword, hash or nonce, or data:/blob:.
    every_source = [value for values in policy.values() for value in values]
    assert all(v.startswith("'") or v in ("data:", "blob:") for v in every_source), every_source
    assert "'unsafe-inline'" not in every_source and "'unsafe-eval'" not in every_source
    # Every script is a file: an inline one would be refused by the policy above.
    scripts = re.findall(rb"<script[^>]*>", response.content)
    assert scripts and all(b' src="' in tag for tag in scripts)
    for url in referenced(response.content):
        if url.startswith(b"data:"):
            continue
        assert url.startswith(ASSET_PREFIX.encode()), url
        asset = await api.client.get(url.decode())
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == ASSETS[url.decode().rsplit("/", 1)[1]]


async def test_swagger_styles_need_no_exception(api: Api) -> None:
    policy = policy_of((await api.client.get("/docs")).headers["content-security-policy"])
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]


async def test_redoc_styles_carry_a_fresh_nonce(api: Api) -> None:
    # ReDoc inserts its styles at run time: they pass by this answer's nonce, which an
    # attacker's markup cannot know in advance because every answer has a new one.
    nonces = []
    for _ in range(2):
        response = await api.client.get("/redoc")
        policy = policy_of(response.headers["content-security-policy"])
        nonce = re.search(rb'data-nonce="([^"]+)"', response.content)
        assert nonce is not None
        nonces.append(nonce.group(1).decode())
        assert f"'nonce-{nonces[-1]}'" in policy["style-src"]
        assert len(nonces[-1]) >= 22  # at least 128 bits
        assert policy["worker-src"] == ["blob:"]
        assert response.headers["cache-control"] == "no-store"  # a nonce is never reused
    assert nonces[0] != nonces[1]


async def test_the_served_bundles_name_no_cdn(api: Api) -> None:
    for name in ("redoc.standalone.js", "swagger-ui-bundle.js", "swagger-ui.css"):
        body = (await api.client.get(ASSET_PREFIX + name)).content
        assert b"cdn.redoc.ly" not in body and b"cdn.jsdelivr.net" not in body, name


async def test_only_the_listed_assets_are_served(api: Api) -> None:
    for name in ("VENDORED.json", "README.md", "redoc.LICENSE", "..%2Fpage.py", "nope.js"):
        response = await api.client.get(ASSET_PREFIX + name)
        assert response.status_code == 404, name
        assert response.json()["error"] == "not_found"


async def test_assets_are_revalidated_not_downloaded_again(api: Api) -> None:
    first = await api.client.get(ASSET_PREFIX + "swagger-ui-bundle.js")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await api.client.get(ASSET_PREFIX + "swagger-ui-bundle.js",
                                 headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await api.client.get(ASSET_PREFIX + "swagger-ui-bundle.js",
                                 headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and len(other.content) == len(first.content)


async def test_the_openapi_document_lists_the_operations(api: Api) -> None:
    # What both pages render: the operations a reader looks for are in it.
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert {"/auth/login", "/auth/refresh", "/auth/check", "/users/me"} <= set(paths)


def test_vendored_files_are_the_published_ones() -> None:
    manifest = json.loads(STATIC.joinpath("VENDORED.json").read_text())
    listed: set[str] = set()
    for package, entry in manifest.items():
        if package.startswith("_"):
            continue
        assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"]), package
        assert entry["integrity"].startswith("sha512-"), package
        for name, info in entry["files"].items():
            digest = hashlib.sha256(STATIC.joinpath(name).read_bytes()).hexdigest()
            assert digest == info["sha256"], f"{name} differs from {package} {entry['version']}"
            listed.add(name)
    on_disk = {item.name for item in STATIC.iterdir()}
    assert on_disk == listed | OURS, "a file in static/docs is neither vendored nor ours"
    assert {"swagger-ui.LICENSE", "swagger-ui.NOTICE", "redoc.LICENSE"} <= listed
    served = set(ASSETS)
    assert served <= on_disk and not served & {"VENDORED.json", "README.md"}
