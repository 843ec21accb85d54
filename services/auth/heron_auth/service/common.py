"""What the auth aggregates share: their context (database, settings, events), the email
rule, the grant rule (nobody hands out more than they hold) and session revocation."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from heron_common.db import Database
from heron_common.errors import (
    AlreadyExists,
    ErrorDetail,
    InvalidArgument,
    PermissionDenied,
)
from heron_common.events import EventBus, UnitOfWork, unit_of_work
from heron_common.ids import now_ms
from heron_common.outbox import Outbox
from heron_common.security.permissions import PUBLIC_ROLE, Principal, covers
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth import repository as repo
from heron_auth.settings import AuthSettings

# Revocations outlive the access tokens they cover by this much (verifiers' clock leeway).
REVOCATION_MARGIN_MS = 60_000


@dataclass
class Context:
    database: Database
    settings: AuthSettings
    events: EventBus
    outbox: Outbox | None = None
    """Where the after-events go (`auth:afterLogin`, `auth:afterRegister`); None: nowhere."""

    @property
    def access_ttl_ms(self) -> int:
        return self.settings.access_token_ttl_seconds * 1000

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.database, self.events, self.outbox)


def taken(field: str) -> AlreadyExists:
    return AlreadyExists(
        f"A user with this {field} already exists.", [ErrorDetail(field, "already used")]
    )


async def role_permissions(conn: AsyncConnection, role: str) -> list[str]:
    """The permissions of a role an account may have (any but the anonymous callers')."""
    row = await repo.get_role(conn, role)
    if row is None or role == PUBLIC_ROLE:
        raise InvalidArgument(
            f"There is no role {role!r}.", [ErrorDetail("role", "an existing role")]
        )
    return list(row.permissions)


def check_may_grant(principal: Principal, permissions: Iterable[str], what: str) -> None:
    """Nobody hands out more than they hold: no escalation through roles or tokens."""
    missing = [p for p in permissions if not covers(principal.permissions, p)]
    if missing:
        raise PermissionDenied(
            f"{what} needs permissions you do not hold: {', '.join(sorted(missing))}."
        )


async def revoke_sessions(context: Context, work: UnitOfWork, session_ids: Iterable[str]) -> None:
    """Revoke sessions and publish them to verifiers until their last access token expired."""
    now = now_ms()
    ids = list(session_ids)
    await repo.mark_sessions_revoked(work.conn, ids, now)
    horizon = now + context.access_ttl_ms + REVOCATION_MARGIN_MS
    await repo.insert_revocations(work.conn, [(s, horizon) for s in ids])
    for session_id in ids:
        work.record("session.revoked", session_id)


async def revoke_user_sessions(context: Context, work: UnitOfWork, user_id: str) -> None:
    live = await repo.live_session_ids(work.conn, now_ms(), user_id=user_id)
    await revoke_sessions(context, work, [s for s, _ in live])


AFTER_LOGIN = "auth:afterLogin"
AFTER_REGISTER = "auth:afterRegister"


def user_summary(user: repo.User) -> dict[str, Any]:
    """A user as an after-event shows them: never a secret (no password hash)."""
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "status": user.status,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }
