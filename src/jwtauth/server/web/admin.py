"""Routes of API.md "Roles and administration"."""


from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from ...errors import InvalidInput
from ...fastapi import require_roles
from ...verifier import Verifier
from ..audit import AuditEventName
from ..keyservice import KeyService
from ..service import AuthService
from .auth import client_info
from .models import AdminUserOut, AuditEventOut, AuditPageOut, ErrorOut, KeyOut, RolesIn

ADMIN_ROLE = "admin"
# Larger numbers do not fit a database integer (SQLite and PostgreSQL alike): a 422, not a 500.
MAX_INT64 = 2**63 - 1


def _actor(request: Request) -> str:
    # Set by the router's require_roles dependency, which has run by now.
    return str(request.state.claims.sub)


def admin_router(service: AuthService, keys: KeyService, verifier: Verifier) -> APIRouter:
    router = APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(require_roles(verifier, ADMIN_ROLE))],
        responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 422)},
    )

    @router.get("/users", response_model=list[AdminUserOut])
    async def list_users(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    ) -> list[AdminUserOut]:
        users = await service.list_users(limit=limit, offset=offset)
        return [AdminUserOut(**u.public()) for u in users]  # type: ignore[arg-type]

    @router.patch("/users/{user_id}", response_model=AdminUserOut)
    async def set_roles(user_id: str, body: RolesIn, request: Request) -> AdminUserOut:
        user = await service.set_roles(
            user_id, body.roles, actor_id=_actor(request), client=client_info(request)
        )
        return AdminUserOut(**user.public())  # type: ignore[arg-type]

    @router.post("/keys/rotate", response_model=KeyOut)
    async def rotate_keys(request: Request) -> KeyOut:
        kid = await keys.rotate_keys(actor_id=_actor(request), client=client_info(request))
        return KeyOut(kid=kid)

    @router.delete("/users/{user_id}", status_code=204)
    async def delete_user(user_id: str, request: Request) -> Response:
        await service.delete_user(user_id, actor_id=_actor(request), client=client_info(request))
        return Response(status_code=204)

    @router.get("/audit", response_model=AuditPageOut)
    async def audit(
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_INT64, description="id cursor: older than")
        ] = None,
        user_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9-]{1,36}$")] = None,
        event: AuditEventName | None = None,
        since: AwareDatetime | None = None,
    ) -> AuditPageOut:
        """Security events, newest first; page on with ``before=next_before``."""
        found = await service.audit_page(
            limit=limit + 1, before=before, user_id=user_id, event=event, since=_utc(since)
        )
        page = found[:limit]
        return AuditPageOut(
            events=[_audit_out(e.fields()) for e in page],
            next_before=page[-1].id if len(found) > limit else None,
        )

    return router


def _utc(moment: datetime | None) -> datetime | None:
    # An aware time at the edge of the calendar (year 1 at +14:00) has no UTC value.
    try:
        return moment.astimezone(UTC) if moment is not None else None
    except OverflowError:
        raise InvalidInput("since: out of range", field="since") from None


def _audit_out(fields: dict[str, object]) -> AuditEventOut:
    return AuditEventOut(id=fields.pop("audit_id"), **fields)  # type: ignore[arg-type]
