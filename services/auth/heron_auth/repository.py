"""Auth queries (SQLAlchemy Core); no policy here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth.models import (
    api_tokens,
    refresh_tokens,
    revocations,
    roles,
    sessions,
    sign_in_addresses,
    signing_keys,
    users,
)

Row = dict[str, Any]
# How long a successful sign-in keeps an address known to its account.
KNOWN_ADDRESS_DAYS = 90


async def one(conn: AsyncConnection, statement: Any) -> Row | None:
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


# -- roles -------------------------------------------------------------------------------------
async def list_roles(conn: AsyncConnection) -> list[Row]:
    result = await conn.execute(select(roles).order_by(roles.c.name))
    return [dict(r) for r in result.mappings()]


async def get_role(conn: AsyncConnection, name: str) -> Row | None:
    return await one(conn, select(roles).where(roles.c.name == name))


async def insert_role(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(roles).values(**values))


async def update_role(conn: AsyncConnection, name: str, **values: Any) -> None:
    await conn.execute(update(roles).where(roles.c.name == name).values(**values))


# -- users -------------------------------------------------------------------------------------
async def user_by_id(conn: AsyncConnection, user_id: str, *, lock: bool = False) -> Row | None:
    statement = select(users).where(users.c.id == user_id)
    return await one(conn, statement.with_for_update() if lock else statement)


async def user_by_email_key(conn: AsyncConnection, email_key: str) -> Row | None:
    return await one(conn, select(users).where(users.c.email_key == email_key))


async def user_by_username(conn: AsyncConnection, username: str) -> Row | None:
    return await one(conn, select(users).where(users.c.username == username))


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def count_active_with_role(conn: AsyncConnection, role: str) -> int:
    statement = (
        select(func.count())
        .select_from(users)
        .where(users.c.role == role, users.c.status == "active")
    )
    return int((await conn.execute(statement)).scalar_one())


async def list_users(conn: AsyncConnection, limit: int, offset: int) -> list[Row]:
    statement = select(users).order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
    return [dict(r) for r in (await conn.execute(statement)).mappings()]


async def insert_user(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(users).values(**values))


async def update_user(conn: AsyncConnection, user_id: str, **values: Any) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def delete_user(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(users).where(users.c.id == user_id))


# -- sessions and refresh tokens ---------------------------------------------------------------
async def insert_session(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(sessions).values(**values))


async def get_session(conn: AsyncConnection, session_id: str) -> Row | None:
    return await one(conn, select(sessions).where(sessions.c.id == session_id))


async def live_session_ids(
    conn: AsyncConnection, now: int, *, user_id: str | None = None, api_token_id: str | None = None
) -> list[tuple[str, int]]:
    """(id, expires_at) of the unrevoked, unexpired sessions of a user or an API token."""
    statement = select(sessions.c.id, sessions.c.expires_at).where(
        sessions.c.revoked_at.is_(None), sessions.c.expires_at > now
    )
    if user_id is not None:
        statement = statement.where(sessions.c.user_id == user_id)
    if api_token_id is not None:
        statement = statement.where(sessions.c.api_token_id == api_token_id)
    return [(r[0], int(r[1])) for r in await conn.execute(statement)]


async def mark_sessions_revoked(
    conn: AsyncConnection, session_ids: Iterable[str], now: int
) -> None:
    ids = list(session_ids)
    if not ids:
        return
    await conn.execute(
        update(sessions)
        .where(sessions.c.id.in_(ids), sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(ids)))


async def insert_revocations(conn: AsyncConnection, entries: Iterable[tuple[str, int]]) -> None:
    rows = [{"session_id": s, "expires_at": e} for s, e in entries]
    if rows:
        await conn.execute(insert(revocations), rows)


async def revocations_since(conn: AsyncConnection, cursor: int, now: int) -> list[Row]:
    statement = (
        select(revocations)
        .where(revocations.c.seq > cursor, revocations.c.expires_at > now)
        .order_by(revocations.c.seq)
    )
    return [dict(r) for r in (await conn.execute(statement)).mappings()]


async def max_revocation_seq(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.max(revocations.c.seq)))).scalar() or 0)


async def insert_refresh_token(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(refresh_tokens).values(**values))


async def refresh_token(conn: AsyncConnection, token_hash: str) -> Row | None:
    statement = (
        select(
            refresh_tokens,
            sessions.c.user_id,
            sessions.c.revoked_at.label("session_revoked_at"),
            sessions.c.expires_at.label("session_expires_at"),
            sessions.c.csrf_hash.label("session_csrf_hash"),
        )
        .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
        .where(refresh_tokens.c.token_hash == token_hash)
    )
    return await one(conn, statement)


async def claim_refresh_token(conn: AsyncConnection, token_hash: str, now: int) -> bool:
    """Mark the token used; False when it already was (by this or a concurrent refresh)."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


# -- where accounts signed in from --------------------------------------------------------------
async def address_known(conn: AsyncConnection, user_id: str, address_hash: str, since: int) -> bool:
    statement = select(sign_in_addresses.c.last_seen_at).where(
        sign_in_addresses.c.user_id == user_id,
        sign_in_addresses.c.address_hash == address_hash,
        sign_in_addresses.c.last_seen_at >= since,
    )
    return (await conn.execute(statement)).first() is not None


async def remember_address(
    conn: AsyncConnection, user_id: str, address_hash: str, now: int
) -> None:
    """Insert or refresh, in one statement (so it can share the sign-in's transaction)."""
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    statement = dialect_insert(sign_in_addresses).values(
        user_id=user_id, address_hash=address_hash, last_seen_at=now
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[sign_in_addresses.c.user_id, sign_in_addresses.c.address_hash],
            set_={"last_seen_at": now},
        )
    )


async def prune(conn: AsyncConnection, now: int) -> None:
    """Forget what can no longer matter: expired sessions, tokens and revocations."""
    await conn.execute(delete(revocations).where(revocations.c.expires_at <= now))
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at <= now))
    await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
    await conn.execute(
        delete(sign_in_addresses).where(
            sign_in_addresses.c.last_seen_at < now - KNOWN_ADDRESS_DAYS * 86_400_000
        )
    )


# -- API tokens --------------------------------------------------------------------------------
async def insert_api_token(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(api_tokens).values(**values))


async def api_token_by_hash(conn: AsyncConnection, token_hash: str) -> Row | None:
    return await one(conn, select(api_tokens).where(api_tokens.c.token_hash == token_hash))


async def api_token_by_id(conn: AsyncConnection, token_id: str) -> Row | None:
    return await one(conn, select(api_tokens).where(api_tokens.c.id == token_id))


async def list_api_tokens(conn: AsyncConnection, user_id: str) -> list[Row]:
    statement = (
        select(api_tokens)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    return [dict(r) for r in (await conn.execute(statement)).mappings()]


async def update_api_token(conn: AsyncConnection, token_id: str, **values: Any) -> None:
    await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(**values))


# -- signing keys ------------------------------------------------------------------------------
async def published_keys(conn: AsyncConnection, retired_after: int) -> list[Row]:
    statement = (
        select(signing_keys)
        .where(or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > retired_after))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid)
    )
    return [dict(r) for r in (await conn.execute(statement)).mappings()]


async def insert_signing_key(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(signing_keys).values(**values))


async def retire_signing_keys(conn: AsyncConnection, except_kid: str, now: int) -> None:
    await conn.execute(
        update(signing_keys)
        .where(and_(signing_keys.c.kid != except_kid, signing_keys.c.retired_at.is_(None)))
        .values(retired_at=now)
    )
