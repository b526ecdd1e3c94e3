"""Routes of API.md "Roles and administration"."""


from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..fastapi import require_roles
from ..service import AuthService
from .models import AdminUserOut, ErrorOut, KeyOut, RolesIn

ADMIN_ROLE = "admin"


def admin_router(service: AuthService) -> APIRouter:
    router = APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(require_roles(service.verifier, ADMIN_ROLE))],
        responses={code: {"model": ErrorOut} for code in (401, 403, 404, 422)},  # type: ignore[misc]
    )

    @router.get("/users", response_model=list[AdminUserOut])
    async def list_users(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[AdminUserOut]:
        users = await service.list_users(limit=limit, offset=offset)
        return [AdminUserOut(**u.public()) for u in users]  # type: ignore[arg-type]

    @router.patch("/users/{user_id}", response_model=AdminUserOut)
    async def set_roles(user_id: str, body: RolesIn) -> AdminUserOut:
        user = await service.set_roles(user_id, body.roles)
        return AdminUserOut(**user.public())  # type: ignore[arg-type]

    @router.post("/keys/rotate", response_model=KeyOut)
    async def rotate_keys() -> KeyOut:
        return KeyOut(kid=await service.rotate_keys())

    @router.delete("/users/{user_id}", status_code=204)
    async def delete_user(user_id: str) -> Response:
        await service.delete_user(user_id)
        return Response(status_code=204)

    return router
