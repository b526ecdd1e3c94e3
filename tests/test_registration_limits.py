"""Issue 4.2: registration is rate limited per client address (each costs a hash)."""

import httpx

from conftest import BASE_URL, PASSWORD, AppFactory


async def test_registrations_beyond_the_limit_get_429_until_the_window_moves(
    make_api: AppFactory,
) -> None:
    api = await make_api(register_max_per_address=3, register_window=60)
    for name in ("amy", "bob", "cyd"):
        await api.register(name)
    refused = await api.client.post(
        "/auth/register", json={"username": "dan", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another address is not affected by this one's registrations.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=("198.51.100.4", 4000)),
        base_url=BASE_URL,
    )
    async with other:
        elsewhere = await other.post(
            "/auth/register", json={"username": "eve", "password": PASSWORD}
        )
    assert elsewhere.status_code == 201
    api.clock.advance(61)
    await api.register("dan")


async def test_the_operator_cli_path_is_not_limited(make_api: AppFactory) -> None:
    api = await make_api(register_max_per_address=1, register_window=60)
    for name in ("op1", "op2", "op3"):
        await api.service.register(name, PASSWORD)  # no client: the command line
    await api.register("web1")
