"""Blog routes of API.md: anyone reads, a signed-in user writes, the author or an admin
edits and deletes."""


from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints

from .. import Claims, Verifier
from ..errors import Forbidden, InvalidInput, NotFound
from ..fastapi import current_claims
from .store import Post, PostStore

ADMIN_ROLE = "admin"

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Content = Annotated[str, Field(min_length=1, max_length=100_000)]


class PostIn(BaseModel):
    title: Title
    content: Content


class PostPatch(BaseModel):
    title: Title | None = None
    content: Content | None = None


class AuthorOut(BaseModel):
    id: str
    username: str


class PostOut(BaseModel):
    id: int
    title: str
    content: str
    author: AuthorOut
    created_at: str


def _post_id(raw: str) -> int:
    # Any id that is not a post is "not found", whatever its shape.
    if not raw.isdigit() or len(raw) > 18:
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

    @router.get("", response_model=list[PostOut])
    async def list_posts(
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        return JSONResponse([p.public() for p in await store.page(limit=limit, offset=offset)])

    @router.post("", status_code=201, response_model=PostOut)
    async def create_post(body: PostIn, claims: CurrentClaims) -> Response:
        post = await store.create(
            title=body.title,
            content=body.content,
            author_id=claims.sub,
            author_username=claims.username or claims.sub,
            now=datetime.now(UTC),
        )
        return JSONResponse(post.public(), status_code=201)

    @router.get("/{post_id}", response_model=PostOut)
    async def get_post(post_id: str) -> Response:
        post = await store.get(_post_id(post_id))
        if post is None:
            raise NotFound("No such post.")
        return JSONResponse(post.public())

    @router.patch("/{post_id}", response_model=PostOut)
    async def update_post(post_id: str, body: PostPatch, claims: CurrentClaims) -> Response:
        post = await editable(post_id, claims)
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise InvalidInput("Give a title or content to change.")
        updated = await store.update(post.id, changes, datetime.now(UTC))
        if updated is None:
            raise NotFound("No such post.")
        return JSONResponse(updated.public())

    @router.delete("/{post_id}", status_code=204)
    async def delete_post(post_id: str, claims: CurrentClaims) -> Response:
        post = await editable(post_id, claims)
        await store.delete(post.id)
        return Response(status_code=204)

    return router
