"""Queries on the OAuth provider's tables: clients, codes, consents and grant links
(the back-channel outbox is store/oauth_outbox.py).

A code's one use is a conditional UPDATE (``used_at IS NULL``) that exactly one of any
number of concurrent redemptions wins, on SQLite (one writer) and PostgreSQL (row lock,
WHERE re-evaluated) alike; a loser marks the row replayed in the same statement's
aftermath, so the winner learns of it when it binds the family it created.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..oauth.clients import ClientMetadata, validate_metadata
from ..oauth.ports import ClaimOutcome, CodeClaim, CodeRecord, GrantLink, StoredClient
from .database import Database
from .oauth_tables import oauth_clients, oauth_codes, oauth_consents, oauth_grants

# Stored metadata was validated when written; reading it back must not depend on
# today's settings (a loopback URI allowed then), so it is loaded without the rules.
_ANY_ALG = ("RS256", "ES256", "EdDSA", "PS256", "HS256")


def _metadata(client_id: str, data: dict[str, Any]) -> ClientMetadata:
    return validate_metadata(
        data, client_id=client_id, trusted=True, allow_loopback=True, id_token_algs=_ANY_ALG
    )


def _client(row: sa.Row[Any]) -> StoredClient:
    return StoredClient(_metadata(row.client_id, row.metadata), row.secret_hash, row.created_at)


class OAuthClientStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, client_id: str) -> StoredClient | None:
        query = oauth_clients.select().where(oauth_clients.c.client_id == client_id)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _client(row) if row else None

    async def add(self, client: StoredClient, *, now: datetime, dynamic: bool = False) -> None:
        async with self._db.begin() as conn:
            await conn.execute(oauth_clients.insert().values(
                client_id=client.metadata.client_id, secret_hash=client.secret_hash,
                metadata=client.metadata.public(), dynamic=dynamic, created_at=now,
                updated_at=now,
            ))

    async def replace(self, metadata: ClientMetadata, *, now: datetime) -> bool:
        async with self._db.begin() as conn:
            done = await conn.execute(
                oauth_clients.update()
                .where(oauth_clients.c.client_id == metadata.client_id)
                .values(metadata=metadata.public(), updated_at=now)
            )
        return bool(done.rowcount)

    async def delete(self, client_id: str) -> bool:
        """Delete the client and (cascade) its codes, consents, links and outbox rows.
        Revoke its families first (``families_of_client``): the links name them."""
        async with self._db.begin() as conn:
            done = await conn.execute(
                oauth_clients.delete().where(oauth_clients.c.client_id == client_id)
            )
        return bool(done.rowcount)

    async def page(self, *, limit: int, offset: int) -> list[StoredClient]:
        query = (
            oauth_clients.select()
            .order_by(oauth_clients.c.created_at, oauth_clients.c.client_id)
            .limit(limit).offset(offset)
        )
        async with self._db.connect() as conn:
            return [_client(row) for row in await conn.execute(query)]


_CLAIM_CODE = (
    oauth_codes.update()
    .where(oauth_codes.c.code_hash == sa.bindparam("b_hash"), oauth_codes.c.used_at.is_(None))
    .values(used_at=sa.bindparam("b_now"))
    .returning(*oauth_codes.c)
)
_MARK_REPLAYED = (
    oauth_codes.update()
    .where(oauth_codes.c.code_hash == sa.bindparam("b_hash"), oauth_codes.c.used_at.is_not(None))
    .values(replayed_at=sa.bindparam("b_now"))
    .returning(oauth_codes.c.family_id)
)


async def insert_ignoring_conflict(
    conn: AsyncConnection, table: sa.Table, values: dict[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on either backend; True if a row was inserted."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    done = await conn.execute(insert(table).values(**values).on_conflict_do_nothing())
    return bool(done.rowcount)


def _code(row: sa.Row[Any]) -> CodeRecord:
    return CodeRecord(
        code_hash=row.code_hash, client_id=row.client_id, user_id=row.user_id,
        redirect_uri=row.redirect_uri, scope=tuple(row.scope.split()),
        code_challenge=row.code_challenge, nonce=row.nonce, resource=row.resource,
        signin_sid=row.signin_sid, auth_time=row.auth_time, amr=tuple(row.amr), acr=row.acr,
        expires_at=row.expires_at,
    )


class CodeStore:
    def __init__(self, db: Database, *, keep_used: int = 600) -> None:
        self._db = db
        # A used code is kept this long past its expiry, so a late replay is still seen.
        self._keep_used = timedelta(seconds=keep_used)

    async def add(self, code: CodeRecord, *, now: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(oauth_codes.insert().values(
                code_hash=code.code_hash, client_id=code.client_id, user_id=code.user_id,
                redirect_uri=code.redirect_uri, scope=" ".join(code.scope),
                code_challenge=code.code_challenge, nonce=code.nonce, resource=code.resource,
                signin_sid=code.signin_sid, auth_time=code.auth_time, amr=list(code.amr),
                acr=code.acr, created_at=now, expires_at=code.expires_at,
            ))

    async def claim(self, code_hash: str, *, now: datetime) -> CodeClaim:
        async with self._db.begin() as conn:
            won = (await conn.execute(_CLAIM_CODE, {"b_hash": code_hash, "b_now": now})).first()
            if won is not None:
                return CodeClaim(ClaimOutcome.CLAIMED, code=_code(won))
            replayed = (
                await conn.execute(_MARK_REPLAYED, {"b_hash": code_hash, "b_now": now})
            ).first()
        if replayed is None:
            return CodeClaim(ClaimOutcome.UNKNOWN)
        return CodeClaim(ClaimOutcome.REPLAYED, family_id=replayed.family_id)

    async def bind_family(self, code_hash: str, session_id: str) -> bool:
        async with self._db.begin() as conn:
            row = (await conn.execute(
                oauth_codes.update()
                .where(oauth_codes.c.code_hash == code_hash)
                .values(family_id=session_id)
                .returning(oauth_codes.c.replayed_at)
            )).first()
        return row is not None and row.replayed_at is not None

    async def purge(self, now: datetime) -> int:
        async with self._db.begin() as conn:
            done = await conn.execute(
                oauth_codes.delete().where(oauth_codes.c.expires_at < now - self._keep_used)
            )
        return int(done.rowcount or 0)


class ConsentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def granted(self, user_id: str, client_id: str) -> frozenset[str]:
        query = sa.select(oauth_consents.c.scope).where(
            oauth_consents.c.user_id == user_id, oauth_consents.c.client_id == client_id
        )
        async with self._db.connect() as conn:
            scope = (await conn.execute(query)).scalar_one_or_none()
        return frozenset(scope.split()) if scope else frozenset()

    async def grant(self, user_id: str, client_id: str, scope: frozenset[str], *,
                    now: datetime) -> None:
        """Add ``scope`` to what the user granted the client (a union: never narrows)."""
        key = (oauth_consents.c.user_id == user_id, oauth_consents.c.client_id == client_id)
        async with self._db.begin() as conn:
            await insert_ignoring_conflict(conn, oauth_consents, {
                "user_id": user_id, "client_id": client_id, "scope": "",
                "granted_at": now, "updated_at": now,
            })
            # Locked (PostgreSQL) so two grants at once both end up in the union.
            current = (await conn.execute(
                sa.select(oauth_consents.c.scope).where(*key).with_for_update()
            )).scalar_one()
            union = frozenset(current.split()) | scope
            await conn.execute(
                oauth_consents.update().where(*key)
                .values(scope=" ".join(sorted(union)), updated_at=now)
            )

    async def revoke(self, user_id: str, client_id: str) -> bool:
        async with self._db.begin() as conn:
            done = await conn.execute(oauth_consents.delete().where(
                oauth_consents.c.user_id == user_id, oauth_consents.c.client_id == client_id
            ))
        return bool(done.rowcount)

    async def for_user(self, user_id: str) -> list[tuple[str, frozenset[str], datetime]]:
        query = (
            sa.select(oauth_consents)
            .where(oauth_consents.c.user_id == user_id)
            .order_by(oauth_consents.c.granted_at)
        )
        async with self._db.connect() as conn:
            return [
                (r.client_id, frozenset(r.scope.split()), r.granted_at)
                for r in await conn.execute(query)
            ]


def _link(row: sa.Row[Any]) -> GrantLink:
    return GrantLink(
        session_id=row.session_id, client_id=row.client_id, user_id=row.user_id,
        scope=tuple(row.scope.split()), resource=row.resource, parent_sid=row.parent_sid,
        offline=row.offline, nonce=row.nonce, auth_time=row.auth_time, amr=tuple(row.amr),
        acr=row.acr, created_at=row.created_at,
    )


class GrantStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def link(self, link: GrantLink) -> None:
        async with self._db.begin() as conn:
            await conn.execute(oauth_grants.insert().values(
                session_id=link.session_id, client_id=link.client_id, user_id=link.user_id,
                scope=" ".join(link.scope), resource=link.resource, parent_sid=link.parent_sid,
                offline=link.offline, nonce=link.nonce, auth_time=link.auth_time,
                amr=list(link.amr), acr=link.acr, created_at=link.created_at,
            ))

    async def get(self, session_id: str) -> GrantLink | None:
        query = oauth_grants.select().where(oauth_grants.c.session_id == session_id)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _link(row) if row else None

    async def families_of_client(self, client_id: str) -> list[str]:
        query = sa.select(oauth_grants.c.session_id).where(oauth_grants.c.client_id == client_id)
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def for_user(self, user_id: str) -> list[GrantLink]:
        query = (
            oauth_grants.select()
            .where(oauth_grants.c.user_id == user_id)
            .order_by(oauth_grants.c.created_at)
        )
        async with self._db.connect() as conn:
            return [_link(row) for row in await conn.execute(query)]


async def families_ending_with(
    conn: AsyncConnection, session_ids: Sequence[str]
) -> list[str]:
    """Inside the caller's revocation transaction: the OAuth families that die with these
    sign-in sessions (OIDC Back-Channel Logout 2.7: not those granted offline_access)."""
    if not session_ids:
        return []
    query = sa.select(oauth_grants.c.session_id).where(
        oauth_grants.c.parent_sid.in_(list(session_ids)), oauth_grants.c.offline.is_(False)
    )
    return list((await conn.execute(query)).scalars())
