"""schemathesis over the server's own OpenAPI document, in process over ASGI (SQLite):
generated and mutated requests to every operation must never get a 5xx, and every
response must be one the document declares (status code, content type, headers, body).

Run through schemathesis's engine (what its CLI runs), not its pytest plugin: the lazy
``from_fixture`` loader of schemathesis 4.32 breaks on pytest 9.2 (``Node._nodeid`` is
gone), and a schema loaded at import would build the app during collection.

Bounded for CI: the examples phase once, then fuzzing rounds until ``FUZZ_SECONDS``
(JWTAUTH_FUZZ_SECONDS, default 30) are spent. Protected operations get a real admin's
bearer token, so the fuzzer gets past the guard into the handlers; when an operation
ends that session (logout-all, password change), the 401 makes schemathesis log in again.
"""

from __future__ import annotations

import os
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.python.asgi import get_client, shutdown_lifespans

from jwtauth.server.config import Settings
from jwtauth.server.web.app import create_app

from conftest import FAST_HASH, PASSWORD

FUZZ_SECONDS = int(os.environ.get("JWTAUTH_FUZZ_SECONDS", "30"))
ADMIN = {"username": "root", "password": PASSWORD}

# What schemathesis.toml would say. Enabled checks, and why the others are off:
# - ignored_auth: needs security schemes in the document; ours has none (the bearer
#   guard is covered route by route in test_attacks_*.py).
# - use_after_free, ensure_resource_availability, object_level_authorization: stateful
#   checks (links between operations), and the stateful phase is not run.
# - max_response_time (left unset): no timing asserts in this suite.
# - allow_header_conformance: the Allow header of a 405 is checked in test_errors.py.
CONFIG = f"""
max-time = {FUZZ_SECONDS}
[generation]
max-examples = 25
[phases]
examples.enabled = true
coverage.enabled = false
fuzzing.enabled = true
stateful.enabled = false
[checks]
not_a_server_error.enabled = true            # no 5xx, whatever comes in
status_code_conformance.enabled = true       # every status is one the operation documents
content_type_conformance.enabled = true      # and so is its content type
response_headers_conformance.enabled = true  # and its documented headers
response_schema_conformance.enabled = true   # and its body validates against the schema
negative_data_rejection.enabled = true       # a request breaking the schema gets a 4xx
positive_data_acceptance.enabled = true      # a valid one gets 2xx (or 401/403/404/409/429)
missing_required_header.enabled = true       # a required header left out is a 4xx
unsupported_method.enabled = true            # an undocumented method is a 405
ignored_auth.enabled = false
use_after_free.enabled = false
ensure_resource_availability.enabled = false
object_level_authorization.enabled = false
allow_header_conformance.enabled = false

# A schema-valid new password may still be one of the 30,000 most common (schemathesis
# offers "username" and "password" as passwords): that 422 is the contract (API.md).
[[operations]]
include-path = ["/auth/register", "/auth/password"]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429",
]
"""

# Operations a valid request with the admin's token must be able to pass: proof that the
# fuzzer got through the bearer guard, not only to its 401.
MUST_SUCCEED = ["GET /users/me", "GET /auth/sessions", "GET /admin/users", "POST /posts",
                "POST /admin/keys/rotate", "GET /admin/audit"]


class AdminToken:
    """schemathesis auth provider: a fresh login, cached until a 401 says it died. The
    fuzzer learns ids from responses and may delete the admin itself: then it is made
    again."""

    def get(self, case: Any, context: Any) -> str:
        with get_client(context.app) as client:
            response = client.post("/auth/login", json=ADMIN)
            if response.status_code == 401:
                create_admin(context.app)
                response = client.post("/auth/login", json=ADMIN)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    database = tmp_path_factory.mktemp("fuzz") / "jwtauth.db"
    settings = Settings(
        **FAST_HASH, public_url=None, issuer="https://jwtauth.test",
        database_url=f"sqlite:///{database}",
        # The fuzzer fails thousands of logins and registers hundreds of users from one
        # address; our own admin login and re-registration must still pass.
        login_max_failures=1_000_000, login_address_max_failures=1_000_000,
        register_max_per_address=1_000_000,
    )
    app = create_app(settings)
    config = SchemathesisConfig.from_dict(tomllib.loads(CONFIG))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)  # starts it
    create_admin(app)
    schema.auth(refresh_interval=600)(AdminToken)  # registers it for this schema
    yield schema
    shutdown_lifespans()


def create_admin(app: Any) -> None:
    """Register the admin, and give the role as an operator would: through the service,
    on the event loop schemathesis runs the app on."""
    from schemathesis.python.asgi import _get_portal

    with get_client(app) as client:
        response = client.post("/auth/register", json=ADMIN)
    assert response.status_code == 201, response.text
    _get_portal().call(app.state.service.set_roles, response.json()["id"], ["user", "admin"])


def run_engine(schema: Any) -> tuple[list[str], dict[str, set[int]]]:
    """Run the phases; the failures (one entry each) and the statuses seen per operation."""
    found: list[str] = []
    statuses: dict[str, set[int]] = defaultdict(set)
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: error: {event.info.message}")
        if not isinstance(event, events.ScenarioFinished):
            continue
        for interaction in event.recorder.interactions.values():
            if interaction.response is not None and event.label:
                statuses[event.label].add(interaction.response.status_code)
        if event.status not in (Status.FAILURE, Status.ERROR):
            continue
        for checks in event.recorder.checks.values():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    found.append(f"{event.label}: {check.name}: {failure.title}: "
                                 f"{failure.message[:300]}\n    {check.failure_info.code_sample}")
    return sorted(set(found)), statuses


@pytest.mark.timeout(FUZZ_SECONDS + 180)
def test_every_operation_keeps_its_documented_contract(api_schema: Any) -> None:
    failures, statuses = run_engine(api_schema)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
    operations = {f"{op.method.upper()} {op.path}" for op in api_schema.get_all_operations()
                  if hasattr(op, "method")}
    assert operations <= set(statuses), f"never called: {operations - set(statuses)}"
    for label in MUST_SUCCEED:
        assert any(200 <= s < 300 for s in statuses[label]), (label, statuses[label])
