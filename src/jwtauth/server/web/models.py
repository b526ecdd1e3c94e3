"""Request and response bodies (pydantic): the shapes of API.md."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..passwords import MAX_LENGTH, MIN_LENGTH

# Every free-text field of a request: U+0000 is valid JSON, but PostgreSQL cannot store
# it in text (the query fails: a 500 before this) and C strings end at it, so it is a 422
# on every database. A pattern, not a validator, so the OpenAPI document says so too.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,64}$")]
NewPassword = Annotated[Text, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
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
    username: Annotated[Text, Field(min_length=1, max_length=64)]
    password: Annotated[Text, Field(min_length=1, max_length=MAX_LENGTH)]


class RefreshIn(BaseModel):
    refresh_token: Annotated[Text, Field(min_length=1, max_length=256)] | None = None


class PasswordIn(BaseModel):
    current_password: Annotated[Text, Field(min_length=1, max_length=MAX_LENGTH)]
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
