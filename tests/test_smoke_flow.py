"""The tutorials' basic sequence, end to end through the ASGI app."""

from conftest import Api


async def test_register_login_me_refresh_logout(api: Api) -> None:
    user = await api.register()
    assert user["username"] == "alice" and user["roles"] == ["user"]
    tokens = await api.login()
    me = await api.client.get("/users/me", headers=tokens.headers)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    refreshed = await api.client.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != tokens.refresh_token
    logout = await api.client.post("/auth/logout", headers=tokens.headers)
    assert logout.status_code == 204
    again = await api.client.get("/users/me", headers=tokens.headers)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_token"
