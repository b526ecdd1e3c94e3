"""The blog's own table and queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.tables import UTCDateTime

metadata = sa.MetaData()

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("author_id", sa.String(36), nullable=False),
    sa.Column("author_username", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    title: str
    content: str
    author_id: str
    author_username: str
    created_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "author": {"id": self.author_id, "username": self.author_username},
            "created_at": self.created_at.isoformat(),
        }


def _post(row: sa.Row[Any]) -> Post:
    return Post(row.id, row.title, row.content, row.author_id, row.author_username, row.created_at)


class PostStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, *, limit: int, offset: int) -> list[Post]:
        query = (
            posts.select()
            .order_by(posts.c.created_at.desc(), posts.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as conn:
            return [_post(row) for row in await conn.execute(query)]

    async def get(self, post_id: int) -> Post | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(posts.select().where(posts.c.id == post_id))).first()
        return _post(row) if row else None

    async def create(
        self, *, title: str, content: str, author_id: str, author_username: str, now: datetime
    ) -> Post:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                posts.insert()
                .values(
                    title=title, content=content, author_id=author_id,
                    author_username=author_username, created_at=now, updated_at=now,
                )
                .returning(posts.c.id)
            )
            post_id = result.scalar_one()
        return Post(post_id, title, content, author_id, author_username, now)

    async def update(self, post_id: int, changes: dict[str, str], now: datetime) -> Post | None:
        async with self._engine.begin() as conn:
            await conn.execute(
                posts.update().where(posts.c.id == post_id).values(**changes, updated_at=now)
            )
            row = (await conn.execute(posts.select().where(posts.c.id == post_id))).first()
        return _post(row) if row else None

    async def delete(self, post_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(posts.delete().where(posts.c.id == post_id))
