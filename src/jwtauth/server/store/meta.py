"""Small named values shared by every process of one database (e.g. the issuer)."""

from __future__ import annotations

import sqlalchemy as sa

from .database import Database
from .tables import meta


class MetaStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> str | None:
        async with self._db.connect() as conn:
            query = sa.select(meta.c.value).where(meta.c.name == name)
            value: str | None = (await conn.execute(query)).scalar_one_or_none()
        return value

    async def get_or_set(self, name: str, default: str) -> str:
        """The stored value, or ``default`` stored now; the first writer wins a race."""
        found = await self.get(name)
        if found is not None:
            return found
        try:
            async with self._db.begin() as conn:
                await conn.execute(meta.insert().values(name=name, value=default))
        except sa.exc.IntegrityError:
            pass
        stored = await self.get(name)
        return stored if stored is not None else default
