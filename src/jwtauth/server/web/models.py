"""Request and response bodies (pydantic): the shapes of API.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ...errors import InvalidInput
from ..accounts import rules
from ..passwords import MAX_LENGTH, MIN_LENGTH

T = TypeVar("T")
RULE_ERROR = "jwtauth_rule"  # web/app.py answers these with the rule's own InvalidInput

# Every free-text field of a request: U+0000 is valid JSON, but PostgreSQL cannot store
# it in text (the query fails: a 500 before this) and C strings end at it, so it is a 422
# on every database. A pattern, not a validator, so the OpenAPI document says so too.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]


def _rule(check: Callable[[T], T]) -> AfterValidator:
    """A core rule as a pydantic validator: the API refuses with the rule's message."""

    def validate(value: T) -> T:
        try:
            return check(value)
        except InvalidInput as exc:
            raise PydanticCustomError(RULE_ERROR, "{message}", {"message": exc.message}) from None

    return AfterValidator(validate)


# The schemas show the rules' patterns: the OpenAPI document promises what the core checks.
Username = Annotated[
    str, _rule(rules.validate_username),
    WithJsonSchema({"type": "string", "pattern": rules.USERNAME_PATTERN}),
]
NewPassword = Annotated[Text, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
Roles = Annotated[
    list[str], _rule(rules.validate_roles),
    WithJsonSchema({
        "type": "array", "maxItems": rules.MAX_ROLES,
        "items": {"type": "string", "pattern": rules.ROLE_PATTERN},
    }),
]
Email = Annotated[
    str, _rule(rules.validate_email),
    WithJsonSchema({
        "type": "string", "maxLength": rules.EMAIL_MAX_LENGTH, "pattern": rules.EMAIL_PATTERN,
    }),
]


class RegisterIn(BaseModel):
    username: Username
    password: NewPassword
    email: Email | None = None


class LoginIn(BaseModel):
    username: Annotated[Text, Field(min_length=1, max_length=64)]
    password: Annotated[Text, Field(min_length=1, max_length=MAX_LENGTH)]


class RefreshIn(BaseModel):
    # Any string: one the server never issued, of any length, is invalid_grant (API.md),
    # answered by the sessions module without a lookup.
    refresh_token: str | None = None


class PasswordIn(BaseModel):
    current_password: Annotated[Text, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: NewPassword


class RolesIn(BaseModel):
    roles: Roles


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
