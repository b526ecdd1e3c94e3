"""Blog routes of API.md: anyone reads, a signed-in user writes, the author or an admin
edits and deletes."""


from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from ... import Claims, Verifier
from ...errors import Forbidden, InvalidInput, NotFound
from ...fastapi import current_claims
from .store import Post, PostStore

ADMIN_ROLE = "admin"

# The title is trimmed, then 1-200 characters. JSON Schema checks the raw string, so the
# document says the same with a pattern: whitespace (the set pydantic trims), then 1-200
# characters that begin and end with a non-space, then whitespace.
# U+0000 is refused in both (422): PostgreSQL cannot store it in text.
_WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
TITLE_PATTERN = f"^[{_WS}]*[^{_WS}\\x00](?:[^\\x00]{{0,198}}[^{_WS}\\x00])?[{_WS}]*$"
NO_NUL = r"^[^\x00]*$"
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL),
    WithJsonSchema({"type": "string", "pattern": TITLE_PATTERN}),
]
Content = Annotated[str, Field(min_length=1, max_length=100_000, pattern=NO_NUL)]
_TITLE_SCHEMA = {"type": "string", "pattern": TITLE_PATTERN}
_CONTENT_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 100_000, "pattern": NO_NUL}


class PostIn(BaseModel):
    title: Title
    content: Content


class PostPatch(BaseModel):
    # The document promises what the handler accepts: at least one of the two, not null.
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["title"]}, {"required": ["content"]}]}
    )
    title: Annotated[Title | None, WithJsonSchema(_TITLE_SCHEMA)] = None
    content: Annotated[Content | None, WithJsonSchema(_CONTENT_SCHEMA)] = None


class AuthorOut(BaseModel):
    id: str
    username: str


class ErrorOut(BaseModel):
    """The error body of every jwtauth.fastapi guard (and of the server)."""

    error: str
    message: str


# Declared so the OpenAPI document lists every answer a route can give.
_READ_ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut} for c in (404, 422)}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut} for c in (400, 401, 403, 404, 422)
}
MAX_OFFSET = 2**63 - 1  # beyond a database integer: a 422, not a 500


class PostOut(BaseModel):
    id: int
    title: str
    content: str
    author: AuthorOut
    created_at: str


def _post_id(raw: str) -> int:
    # Any id that is not a post is "not found", whatever its shape.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "¹".isdigit() is True
        raise NotFound("No such post.")
    return int(raw)


def blog_router(verifier: Verifier, store: PostStore) -> APIRouter:
    router = APIRouter(prefix="/posts", tags=["blog"])
    CurrentClaims = Annotated[Claims, Depends(current_claims(verifier))]

    async def editable(raw_id: str, claims: Claims) -> Post:
        post = await store.get(_post_id(raw_id))
        if post is None:
            raise NotFound("No such post.")
        if post.author_id != claims.sub and not claims.has_role(ADMIN_ROLE):
            raise Forbidden("Only the author or an admin may change this post.")
        return post

    @router.get("", response_model=list[PostOut], responses=_READ_ERRORS)
    async def list_posts(
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Response:
        return JSONResponse([p.public() for p in await store.page(limit=limit, offset=offset)])

    @router.post("", status_code=201, response_model=PostOut, responses=_WRITE_ERRORS)
    async def create_post(body: PostIn, claims: CurrentClaims) -> Response:
        post = await store.create(
            title=body.title,
            content=body.content,
            author_id=claims.sub,
            author_username=claims.username or claims.sub,
            now=datetime.now(UTC),
        )
        return JSONResponse(post.public(), status_code=201)

    @router.get("/{post_id}", response_model=PostOut, responses=_READ_ERRORS)
    async def get_post(post_id: str) -> Response:
        post = await store.get(_post_id(post_id))
        if post is None:
            raise NotFound("No such post.")
        return JSONResponse(post.public())

    @router.patch("/{post_id}", response_model=PostOut, responses=_WRITE_ERRORS)
    async def update_post(post_id: str, body: PostPatch, claims: CurrentClaims) -> Response:
        post = await editable(post_id, claims)
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise InvalidInput("Give a title or content to change.")
        updated = await store.update(post.id, changes, datetime.now(UTC))
        if updated is None:
            raise NotFound("No such post.")
        return JSONResponse(updated.public())

    @router.delete("/{post_id}", status_code=204, responses=_WRITE_ERRORS)
    async def delete_post(post_id: str, claims: CurrentClaims) -> Response:
        post = await editable(post_id, claims)
        await store.delete(post.id)
        return Response(status_code=204)

    return router
