"""Cutting one client off from the test Redis, for the catch-up and fail-closed tests.

Redis cannot be restarted from a test, so an outage is made per client: the client
connects as a Redis ACL user of its own, and the outage disables that user and kills
its connections (``CLIENT KILL USER``), so reconnecting fails until it is enabled again.
Everything else keeps using the default user.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import redis

from conftest import REDIS_URL


class RedisUser:
    """A Redis ACL user limited to the test's key prefix; removed by ``drop``."""

    def __init__(self, prefix: str, rules: tuple[str, ...] = ("~{prefix}*", "+@all")) -> None:
        self.name = "jwtauth_test_" + secrets.token_hex(6)
        self._password = secrets.token_hex(16)
        self._admin = redis.Redis.from_url(REDIS_URL)
        self._admin.execute_command(
            "ACL", "SETUSER", self.name, "on", f">{self._password}",
            *(rule.format(prefix=prefix) for rule in rules),
        )

    @property
    def url(self) -> str:
        parts = urlsplit(REDIS_URL)
        netloc = f"{self.name}:{self._password}@{parts.hostname}:{parts.port or 6379}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def cut(self) -> int:
        """Refuse new connections of this user and close its open ones."""
        self._admin.execute_command("ACL", "SETUSER", self.name, "off")
        return int(self._admin.execute_command("CLIENT", "KILL", "USER", self.name))

    def restore(self) -> None:
        self._admin.execute_command("ACL", "SETUSER", self.name, "on")

    def drop(self) -> None:
        self._admin.execute_command("ACL", "DELUSER", self.name)  # closes its connections too
        self._admin.close()


def lose_data(prefix: str) -> None:
    """What a Redis restart without persistence does to our keys: they are gone."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    finally:
        client.close()
