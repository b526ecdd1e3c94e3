"""The grace and reuse rule (sessions/rotation.py ``judge``) as plain code: what a token
that could not be claimed means, for each state of its family and successor. The HTTP
behaviour of the same rule is in test_refresh.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jwtauth.server.sessions import Grace, Invalid, Reused, judge, new_refresh_token
from jwtauth.server.sessions.tokens import seal_successor
from jwtauth.server.store.sessions import PresentedToken

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OLD = new_refresh_token()
SUCCESSOR = new_refresh_token()


def rotated(seconds_ago: float, *, successor_used: bool = False) -> PresentedToken:
    """``OLD``, rotated ``seconds_ago`` to ``SUCCESSOR`` (used, or not yet)."""
    return PresentedToken(
        used_at=NOW - timedelta(seconds=seconds_ago), session_id="s1", user_id="u1",
        username="alice", roles=["user"], family_revoked=False,
        successor_sealed=seal_successor(SUCCESSOR, OLD),
        successor_used_at=NOW if successor_used else None,
        successor_expires_at=NOW + timedelta(days=7),
    )


def test_inside_the_window_an_unused_successor_is_handed_out_again() -> None:
    outcome = judge(rotated(5), OLD, now=NOW, grace=10)
    assert isinstance(outcome, Grace)
    assert outcome.token == SUCCESSOR
    assert (outcome.session_id, outcome.user_id, outcome.username) == ("s1", "u1", "alice")


def test_inside_the_window_a_used_successor_means_a_late_duplicate_not_reuse() -> None:
    assert judge(rotated(5, successor_used=True), OLD, now=NOW, grace=10) == Invalid(
        "late_duplicate"
    )


@pytest.mark.parametrize("successor_used", [False, True])
def test_after_the_window_or_without_one_it_is_reuse(successor_used: bool) -> None:
    found = rotated(11, successor_used=successor_used)
    assert judge(found, OLD, now=NOW, grace=10) == Reused("s1", "u1", "alice")
    assert judge(rotated(0, successor_used=successor_used), OLD, now=NOW, grace=0) == Reused(
        "s1", "u1", "alice"
    )


def test_unknown_revoked_or_dead_successor_is_invalid_and_never_reuse() -> None:
    assert judge(None, OLD, now=NOW, grace=10) == Invalid("unknown")
    revoked = replace(rotated(30), family_revoked=True)
    assert judge(revoked, OLD, now=NOW, grace=10) == Invalid("revoked")
    expired = replace(rotated(5), successor_expires_at=NOW)
    assert judge(expired, OLD, now=NOW, grace=10) == Invalid("expired")
