"""The RFC 9700 attacks that live in the protocol core, one named test each, over a real
database (SQLite and PostgreSQL). The HTTP-level ones (clickjacking headers, the browser
flows) come with the routes."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from oauth_world import (
    WEB_REDIRECT,
    World,
    authorize,
    basic,
    exchange,
    introspect,
    refresh,
    register_native,
    register_web,
    signin_for,
    world,
)

from jwtauth import InvalidInput, InvalidToken
from jwtauth.server.oauth import authorize as az
from jwtauth.server.oauth.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from jwtauth.server.oauth.pkce import s256

__all__ = ["world"]


def pairs(client_id: str, **params: str) -> list[tuple[str, str]]:
    base = {"client_id": client_id, "response_type": "code", "scope": "openid",
            "redirect_uri": WEB_REDIRECT, "state": "st-9",
            "code_challenge": s256("v" * 43), "code_challenge_method": "S256"}
    base.update(params)
    return [(k, v) for k, v in base.items() if v != "<omit>"]


# RFC 9700 4.1: exact matching. None of these may ever be redirected to.
NOT_MATCHING = [
    "https://rp.example.test/callback/evil",  # a longer path
    "https://rp.example.test/callback?x=1",  # an added query
    "https://rp.example.test/callback/",
    "https://rp.example.test:8443/callback",  # another port, not loopback
    "https://rp.example.test/%63allback",  # a percent-encoded variant
    "https://RP.example.test/callback",  # case
    "https://rp.example.test.evil.test/callback",
    "https://evil.test/callback#https://rp.example.test/callback",
    "http://rp.example.test/callback",
]


@pytest.mark.parametrize("redirect_uri", NOT_MATCHING)
async def test_redirect_uri_must_match_exactly(world: World, redirect_uri: str) -> None:
    client_id, _ = await register_web(world)
    decision = await world.provider.authorization.parse(pairs(client_id,
                                                              redirect_uri=redirect_uri))
    assert isinstance(decision, az.ErrorPage)
    assert decision.error.code == "invalid_redirect_uri"  # as oidc-provider shows


async def test_native_loopback_may_vary_the_port_and_nothing_else(world: World) -> None:
    client_id = await register_native(world)
    parse = world.provider.authorization.parse
    ok = await parse(pairs(client_id, redirect_uri="http://127.0.0.1:61000/callback"))
    assert isinstance(ok, az.AuthorizationRequest)
    assert ok.redirect_uri == "http://127.0.0.1:61000/callback"
    for bad in ("http://127.0.0.1:61000/callback/x", "http://localhost:61000/callback",
                "https://127.0.0.1:61000/callback", "http://127.0.0.2:61000/callback"):
        assert isinstance(await parse(pairs(client_id, redirect_uri=bad)), az.ErrorPage), bad


async def test_no_open_redirect_through_errors(world: World) -> None:
    """Errors before the redirect URI is known good are an error page, never a redirect
    (RFC 6749 4.1.2.1, RFC 9700 4.11)."""
    client_id, _ = await register_web(world)
    parse = world.provider.authorization.parse
    for request in (
        pairs("no-such-client", redirect_uri="https://evil.test/"),
        pairs(client_id, redirect_uri="https://evil.test/", response_type="token"),
        pairs(client_id, redirect_uri="<omit>"),
        [*pairs(client_id), ("redirect_uri", "https://evil.test/")],  # repeated
        [*pairs(client_id), ("client_id", "other")],
    ):
        assert isinstance(await parse(request), az.ErrorPage)
    # Once it is known good, the error goes to the client, with state and iss.
    bad = await parse(pairs(client_id, response_type="token"))
    assert isinstance(bad, az.Redirect) and bad.url.startswith(WEB_REDIRECT + "?")
    assert "error=unsupported_response_type" in bad.url and "state=st-9" in bad.url
    assert "iss=https%3A%2F%2Fjwtauth.test" in bad.url


@pytest.mark.parametrize(("params", "why"), [
    ({"code_challenge_method": "plain", "code_challenge": "v" * 43}, "plain"),
    ({"code_challenge_method": "<omit>"}, "no method means plain"),
    ({"code_challenge": "<omit>", "code_challenge_method": "<omit>"}, "no PKCE at all"),
    ({"code_challenge": "short"}, "malformed"),
])
async def test_pkce_downgrade_is_refused(world: World, params: dict[str, str],
                                         why: str) -> None:
    client_id, _ = await register_web(world)
    decision = await world.provider.authorization.parse(pairs(client_id, **params))
    assert isinstance(decision, az.Redirect) and "error=invalid_request" in decision.url, why


@pytest.mark.parametrize("verifier", [None, "x" * 43, "too-short"])
async def test_missing_or_wrong_pkce_verifier(world: World, verifier: str | None) -> None:
    client_id, secret = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    form = [("grant_type", "authorization_code"), ("code", auth.code or ""),
            ("redirect_uri", auth.redirect_uri)]
    if verifier is not None:
        form.append(("code_verifier", verifier))
    with pytest.raises(InvalidGrantError):
        await world.provider.token.handle(form, authorization=basic(client_id, secret))
    # The code was spent by the failed attempt: the right verifier is too late now.
    with pytest.raises(InvalidGrantError):
        await exchange(world, client_id, secret, auth)


async def test_code_replay_kills_the_first_use_tokens(world: World) -> None:
    client_id, secret = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    first = await exchange(world, client_id, secret, auth)
    with pytest.raises(InvalidGrantError):
        await exchange(world, client_id, secret, auth)
    assert await introspect(world, client_id, secret, first["access_token"]) == {"active": False}
    with pytest.raises(InvalidGrantError):
        await refresh(world, client_id, secret, first["refresh_token"])


async def test_concurrent_code_redemptions_have_one_winner(world: World) -> None:
    """Eight redemptions of one code at once: exactly one gets past the claim (one
    family is created). The other seven are replays, so RFC 6749 10.5 applies to the
    one: its family is revoked, and it is refused too if the replays came before it
    answered. However the race falls, no token from the code stays alive."""
    client_id, secret = await register_web(world)
    user_id = await world.user()
    auth = await authorize(world, client_id, signin_for(world, user_id))
    results = await asyncio.gather(
        *(exchange(world, client_id, secret, auth) for _ in range(8)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, dict)]
    assert all(isinstance(r, InvalidGrantError) for r in results if not isinstance(r, dict))
    assert len(wins) <= 1
    assert len(await world.grants.for_user(user_id)) == 1  # one claim won
    for win in wins:
        with pytest.raises(InvalidToken):
            world.verifier.verify_sync(win["access_token"])


async def test_code_injection_across_clients(world: World) -> None:
    victim, _ = await register_web(world)
    attacker, attacker_secret = await register_web(world, client_name="Attacker")
    auth = await authorize(world, victim, signin_for(world, await world.user()))
    with pytest.raises(InvalidGrantError):
        await exchange(world, attacker, attacker_secret, auth)
    # A public client cannot redeem it either, even naming the victim's id.
    with pytest.raises(InvalidClientError):
        await world.provider.token.handle(
            [("grant_type", "authorization_code"), ("code", auth.code or ""),
             ("client_id", victim), ("redirect_uri", auth.redirect_uri),
             ("code_verifier", auth.verifier)], authorization=None)


async def test_redirect_uri_at_the_token_endpoint_must_be_the_same(world: World) -> None:
    client_id, secret = await register_web(
        world, redirect_uris=[WEB_REDIRECT, "https://rp.example.test/other"])
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    auth.redirect_uri = "https://rp.example.test/other"
    with pytest.raises(InvalidGrantError):
        await exchange(world, client_id, secret, auth)


async def test_consent_form_csrf(world: World) -> None:
    """Another site cannot submit allow for the user (RFC 9700 4.4.1.8)."""
    client_id, _ = await register_web(world)
    signin = signin_for(world, await world.user())
    endpoint = world.provider.authorization
    request = await endpoint.parse(pairs(client_id))
    assert isinstance(request, az.AuthorizationRequest)
    shown = await endpoint.decide(request, signin)
    assert isinstance(shown, az.ShowConsent)
    other = await endpoint.parse(pairs(client_id, scope="openid email"))
    assert isinstance(other, az.AuthorizationRequest)
    stranger = signin_for(world, await world.user("mallory"), "signin-mallory")
    for req, who, token in (
        (request, signin, None),  # no token
        (request, signin, secrets.token_hex(32)),  # a guess
        (other, signin, shown.consent_token),  # the token of another request
        (request, stranger, shown.consent_token),  # another sign-in session
        (request, None, shown.consent_token),  # no sign-in at all
    ):
        result = await endpoint.consent(req, who, decision="allow", token=token)
        assert isinstance(result, az.ErrorPage)
    assert await world.consents.granted(signin.user_id, client_id) == frozenset()


async def test_refresh_token_reuse_for_a_public_client_kills_the_family(world: World) -> None:
    client_id = await register_native(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()),
                           scope="openid offline_access", redirect_uri="http://127.0.0.1/callback")
    first = await exchange(world, client_id, None, auth)
    second = await refresh(world, client_id, None, first["refresh_token"])
    with pytest.raises(InvalidGrantError):
        await refresh(world, client_id, None, first["refresh_token"])  # the thief, or the user
    with pytest.raises(InvalidGrantError):
        await refresh(world, client_id, None, second["refresh_token"])
    with pytest.raises(InvalidToken):
        world.verifier.verify_sync(second["access_token"])


async def test_client_credentials_for_a_public_client(world: World) -> None:
    client_id = await register_native(world)
    with pytest.raises(UnauthorizedClientError):
        await world.provider.token.handle(
            [("grant_type", "client_credentials"), ("client_id", client_id)], authorization=None)
    with pytest.raises(InvalidInput):
        await register_native(world, grant_types=["authorization_code", "client_credentials"])


async def test_scope_elevation_on_refresh(world: World) -> None:
    client_id, secret = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()),
                           scope="openid")
    tokens = await exchange(world, client_id, secret, auth)
    for scope in ("openid email", "api:read", "openid offline_access"):
        with pytest.raises(InvalidScopeError):
            await refresh(world, client_id, secret, tokens["refresh_token"], scope=scope)
    # The refused attempts did not rotate the token; narrowing is allowed.
    narrowed = await refresh(world, client_id, secret, tokens["refresh_token"], scope="openid")
    assert narrowed["scope"] == "openid"


async def test_refresh_token_of_another_client(world: World) -> None:
    owner, owner_secret = await register_web(world)
    other, other_secret = await register_web(world, client_name="Other")
    tokens = await exchange(world, owner, owner_secret, await authorize(
        world, owner, signin_for(world, await world.user())))
    with pytest.raises(InvalidGrantError):
        await refresh(world, other, other_secret, tokens["refresh_token"])
    assert await refresh(world, owner, owner_secret, tokens["refresh_token"])  # not rotated


async def test_tokens_of_a_deleted_client(world: World) -> None:
    client_id, secret = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    tokens = await exchange(world, client_id, secret, auth)
    pending = await authorize(world, client_id, signin_for(world, await world.user("bob")))
    await world.provider.registry.delete(client_id)
    with pytest.raises(InvalidToken):
        world.verifier.verify_sync(tokens["access_token"])
    with pytest.raises(InvalidClientError):
        await exchange(world, client_id, secret, pending)
    assert isinstance(await world.provider.authorization.parse(pairs(client_id)), az.ErrorPage)


async def test_wrong_client_secret_and_mixed_methods(world: World) -> None:
    client_id, secret = await register_web(world)
    handle = world.provider.token.handle
    form = [("grant_type", "client_credentials")]
    for authorization, extra in (
        (basic(client_id, secret + "x"), []),
        (basic(client_id, ""), []),
        (None, [("client_id", client_id), ("client_secret", secret)]),  # post, not registered
        (None, [("client_id", client_id)]),  # none, not registered
        ("Bearer " + secret, []),
    ):
        with pytest.raises(InvalidClientError):
            await handle([*form, *extra], authorization=authorization)
    from jwtauth.server.oauth.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):  # two methods at once (RFC 6749 2.3)
        await handle([*form, ("client_secret", secret)], authorization=basic(client_id, secret))


async def test_mix_up_defence_every_response_names_the_issuer(world: World) -> None:
    """RFC 9207: success and error redirects alike carry iss."""
    client_id, _ = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    assert auth.params["iss"] == "https://jwtauth.test"
    error = await world.provider.authorization.parse(pairs(client_id, prompt="bogus"))
    assert isinstance(error, az.Redirect) and "iss=https%3A%2F%2Fjwtauth.test" in error.url


@pytest.mark.parametrize("params", [
    {"nonce": "n" * 513}, {"scope": " ".join(f"s{i:03}" for i in range(450))},
    {"state": "s" * 5000}, {"login_hint": "h" * 5000},
])
async def test_oversized_parameters_are_refused_not_stored(world: World,
                                                           params: dict[str, str]) -> None:
    client_id, _ = await register_web(world)
    decision = await world.provider.authorization.parse(pairs(client_id, **params))
    assert isinstance(decision, az.Redirect) and "error=" in decision.url
