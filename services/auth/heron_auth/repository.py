"""Auth queries (SQLAlchemy Core); no policy here. Rows come back as dataclasses; a write
that breaks a uniqueness rule raises the conflict it means (`EmailTaken`, `UsernameTaken`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from heron_common.db.violations import violation
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
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

# How long a successful sign-in keeps an address known to its account.
KNOWN_ADDRESS_DAYS = 90


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    updated_at: int


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    email_key: str
    """The email folded for comparison: what makes two spellings one account."""
    username: str
    first_name: str
    last_name: str
    display_name: str
    password_hash: str
    status: str
    role: str
    created_at: int
    updated_at: int
    last_login_at: int | None


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    kind: str
    """`password` (signed in) or `api_token` (an exchanged API token)."""
    api_token_id: str | None
    created_at: int
    expires_at: int
    revoked_at: int | None
    csrf_hash: str | None


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """A refresh token with the session it renews."""

    token_hash: str
    session_id: str
    created_at: int
    expires_at: int
    used_at: int | None
    user_id: str
    session_revoked_at: int | None
    session_expires_at: int
    session_csrf_hash: str | None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    prefix: str
    token_hash: str
    permissions: list[str] | None
    """None: the owner's permissions; otherwise a subset of them."""
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]
    created_at: int
    retired_at: int | None


R = TypeVar("R", Role, User, ApiToken)


def changed(row: R, values: Mapping[str, Any]) -> R:
    """`row` with `values` applied (the columns a write set)."""
    return dataclasses.replace(row, **values)


class EmailTaken(Exception):
    pass


class UsernameTaken(Exception):
    pass


def _user_conflict(exc: IntegrityError) -> Exception:
    broken = violation(exc)
    if broken.is_unique("users", ["username"]):
        return UsernameTaken()
    if broken.is_unique("users", ["email_key"]):
        return EmailTaken()
    return exc


T = TypeVar("T")


async def _one(conn: AsyncConnection, statement: Any, record: type[T]) -> T | None:
    row = (await conn.execute(statement)).mappings().first()
    return record(**row) if row is not None else None


async def _all(conn: AsyncConnection, statement: Any, record: type[T]) -> list[T]:
    return [record(**row) for row in (await conn.execute(statement)).mappings()]


# -- roles -------------------------------------------------------------------------------------
async def list_roles(conn: AsyncConnection) -> list[Role]:
    return await _all(conn, select(roles).order_by(roles.c.name), Role)


async def get_role(conn: AsyncConnection, name: str) -> Role | None:
    return await _one(conn, select(roles).where(roles.c.name == name), Role)


async def insert_role(conn: AsyncConnection, role: Role) -> None:
    await conn.execute(insert(roles).values(**dataclasses.asdict(role)))


async def update_role(conn: AsyncConnection, name: str, **values: Any) -> None:
    await conn.execute(update(roles).where(roles.c.name == name).values(**values))


# -- users -------------------------------------------------------------------------------------
async def user_by_id(conn: AsyncConnection, user_id: str) -> User | None:
    return await _one(conn, select(users).where(users.c.id == user_id), User)


async def user_by_email_key(conn: AsyncConnection, email_key: str) -> User | None:
    return await _one(conn, select(users).where(users.c.email_key == email_key), User)


async def user_by_username(conn: AsyncConnection, username: str) -> User | None:
    return await _one(conn, select(users).where(users.c.username == username), User)


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def count_active_with_role(conn: AsyncConnection, role: str) -> int:
    statement = (
        select(func.count())
        .select_from(users)
        .where(users.c.role == role, users.c.status == "active")
    )
    return int((await conn.execute(statement)).scalar_one())


async def list_users(conn: AsyncConnection, limit: int, offset: int) -> list[User]:
    statement = select(users).order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
    return await _all(conn, statement, User)


async def insert_user(conn: AsyncConnection, user: User) -> None:
    try:
        await conn.execute(insert(users).values(**dataclasses.asdict(user)))
    except IntegrityError as exc:
        raise _user_conflict(exc) from None


async def update_user(conn: AsyncConnection, user_id: str, **values: Any) -> None:
    try:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    except IntegrityError as exc:
        raise _user_conflict(exc) from None


async def delete_user(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(users).where(users.c.id == user_id))


# -- sessions and refresh tokens ---------------------------------------------------------------
async def insert_session(conn: AsyncConnection, session: Session) -> None:
    await conn.execute(insert(sessions).values(**dataclasses.asdict(session)))


async def get_session(conn: AsyncConnection, session_id: str) -> Session | None:
    return await _one(conn, select(sessions).where(sessions.c.id == session_id), Session)


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


async def revocations_since(conn: AsyncConnection, cursor: int, now: int) -> list[tuple[str, int]]:
    """(session id, until when) of the revocations after `cursor` that still matter."""
    statement = (
        select(revocations.c.session_id, revocations.c.expires_at)
        .where(revocations.c.seq > cursor, revocations.c.expires_at > now)
        .order_by(revocations.c.seq)
    )
    return [(r[0], int(r[1])) for r in await conn.execute(statement)]


async def max_revocation_seq(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.max(revocations.c.seq)))).scalar() or 0)


async def insert_refresh_token(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(refresh_tokens).values(**values))


async def refresh_token(conn: AsyncConnection, token_hash: str) -> RefreshGrant | None:
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
    return await _one(conn, statement, RefreshGrant)


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
async def insert_api_token(conn: AsyncConnection, token: ApiToken) -> None:
    await conn.execute(insert(api_tokens).values(**dataclasses.asdict(token)))


async def api_token_by_hash(conn: AsyncConnection, token_hash: str) -> ApiToken | None:
    statement = select(api_tokens).where(api_tokens.c.token_hash == token_hash)
    return await _one(conn, statement, ApiToken)


async def api_token_by_id(conn: AsyncConnection, token_id: str) -> ApiToken | None:
    return await _one(conn, select(api_tokens).where(api_tokens.c.id == token_id), ApiToken)


async def list_api_tokens(conn: AsyncConnection, user_id: str) -> list[ApiToken]:
    statement = (
        select(api_tokens)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    return await _all(conn, statement, ApiToken)


async def update_api_token(conn: AsyncConnection, token_id: str, **values: Any) -> None:
    await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(**values))


# -- signing keys ------------------------------------------------------------------------------
async def published_keys(conn: AsyncConnection, retired_after: int) -> list[StoredKey]:
    statement = (
        select(signing_keys)
        .where(or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > retired_after))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid)
    )
    return await _all(conn, statement, StoredKey)


async def insert_signing_key(conn: AsyncConnection, key: StoredKey) -> None:
    await conn.execute(insert(signing_keys).values(**dataclasses.asdict(key)))


async def retire_signing_keys(conn: AsyncConnection, except_kid: str, now: int) -> None:
    await conn.execute(
        update(signing_keys)
        .where(and_(signing_keys.c.kid != except_kid, signing_keys.c.retired_at.is_(None)))
        .values(retired_at=now)
    )
