"""The login limits around one password check: sign-in and the current password of a
password change count in one budget per (address, account) and per address, so the
password-change route is no side door for guessing (issue 13, point 2).

``admit`` checks and counts the attempt before the password is hashed (ratelimit.py
says why); a refusal is audited as ``login_rate_limited``. The caller then audits its
failure, or refunds the attempt with ``limiter.succeeded``.
"""

from __future__ import annotations

from typing import Any

from ..errors import RateLimited
from .audit import AuditEventName, Auditor, Client
from .ratelimit import Attempt, LoginLimiter
from .usernames import fold


async def admit(
    limiter: LoginLimiter, audit: Auditor, username: str, client: Client, *,
    user_id: str | None = None, via: str = "login",
) -> Attempt:
    """Count one password attempt of ``username`` (any case: one account, one budget)
    from ``client``, or raise ``RateLimited`` after auditing the refusal."""
    try:
        return await limiter.attempt(client.address, fold(username))
    except RateLimited as exc:
        detail: dict[str, Any] = {"retry_after": exc.retry_after}
        if via != "login":
            detail["via"] = via
        await audit.record(
            AuditEventName.LOGIN_RATE_LIMITED, user_id=user_id, username=username,
            client=client, detail=detail,
        )
        raise


__all__ = ["admit"]
