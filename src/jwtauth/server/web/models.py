"""Request and response bodies (pydantic): the shapes of API.md."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..passwords import MAX_LENGTH, MIN_LENGTH

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,64}$")]
NewPassword = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
Role = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
# No \s: Python, Rust and JSON Schema (ECMA-262) regexes disagree on what it matches (U+0085),
# and the OpenAPI document must promise exactly what the server accepts.
Email = Annotated[
    str,
    StringConstraints(
        max_length=320, pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+$"
    ),
]


class RegisterIn(BaseModel):
    username: Username
    password: NewPassword
    email: Email | None = None


class LoginIn(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]


class RefreshIn(BaseModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class PasswordIn(BaseModel):
    current_password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: NewPassword


class RolesIn(BaseModel):
    roles: Annotated[list[Role], Field(max_length=32)]


class UserOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    username: str
    roles: list[str]


class AdminUserOut(UserOut):
    created_at: str


class TokenOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int
    refresh_token: str | None = None


class SessionOut(BaseModel):
    id: str
    created_at: str
    last_used_at: str
    user_agent: str | None
    current: bool


class ErrorOut(BaseModel):
    error: str
    message: str


class KeyOut(BaseModel):
    kid: str


class AuditEventOut(BaseModel):
    id: int
    created_at: str
    event: str
    user_id: str | None
    username: str | None
    client_ip: str | None
    user_agent: str | None
    session_id: str | None
    actor_id: str | None
    detail: dict[str, Any]


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    next_before: int | None  # pass as ?before= for the next (older) page; null at the end
