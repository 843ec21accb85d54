"""API token use cases: a person's long-lived tokens for scripts, scoped to a subset of their
permissions, and their exchange for short-lived access tokens."""

from __future__ import annotations

from collections.abc import Sequence

from heron_common.errors import (
    ErrorDetail,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from heron_common.ids import is_id, new_id, now_ms
from heron_common.jsondoc import check_text
from heron_common.security.permissions import Principal

from heron_auth import repository as repo
from heron_auth.repository import ApiToken
from heron_auth.service.common import (
    REVOCATION_MARGIN_MS,
    Context,
    check_may_grant,
    revoke_sessions,
)
from heron_auth.service.roles import check_permission_names
from heron_auth.tokens import API_TOKEN_PREFIX, TokenIssuer, new_api_token, secret_hash

MAX_NAME_LENGTH = 200


class ApiTokens:
    def __init__(self, context: Context, issuer: TokenIssuer) -> None:
        self.context = context
        self.issuer = issuer

    async def create(
        self, principal: Principal, name: str, permissions: Sequence[str], expires_at: int | None
    ) -> tuple[ApiToken, str]:
        """The stored token and the secret itself (shown once, never stored)."""
        if principal.api_token_id:
            raise PermissionDenied("API tokens cannot create API tokens.")
        check_text(name, "name")
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise InvalidArgument(
                f"name is required (at most {MAX_NAME_LENGTH} characters).",
                [ErrorDetail("name", f"1-{MAX_NAME_LENGTH} chars")],
            )
        check_permission_names(permissions)
        check_may_grant(principal, permissions, "This token")
        now = now_ms()
        if expires_at and expires_at <= now:
            raise InvalidArgument(
                "expires_at must be in the future.", [ErrorDetail("expires_at", "in the past")]
            )
        token = new_api_token()
        row = ApiToken(
            id=new_id(),
            user_id=principal.user_id,
            name=name,
            prefix=token[: len(API_TOKEN_PREFIX) + 6],
            token_hash=secret_hash(token),
            permissions=sorted(set(permissions)) if permissions else None,
            created_at=now,
            expires_at=expires_at or None,
            last_used_at=None,
            revoked_at=None,
        )
        async with self.context.unit_of_work() as work:
            await repo.insert_api_token(work.conn, row)
            work.record("api_token.created", row.id)
        return row, token

    async def list(self, principal: Principal) -> list[ApiToken]:
        async with self.context.database.read() as conn:
            return await repo.list_api_tokens(conn, principal.user_id)

    async def revoke(self, principal: Principal, token_id: str) -> None:
        async with self.context.unit_of_work() as work:
            conn = work.conn
            row = await repo.api_token_by_id(conn, token_id) if is_id(token_id) else None
            if row is None or (
                row.user_id != principal.user_id and not principal.may_all("users.update")
            ):
                raise NotFound(f"There is no API token {token_id!r}.")
            if row.revoked_at is None:
                await repo.update_api_token(conn, token_id, revoked_at=now_ms())
                work.record("api_token.revoked", token_id)
            live = await repo.live_session_ids(conn, now_ms(), api_token_id=token_id)
            await revoke_sessions(self.context, work, [s for s, _ in live])

    async def exchange(self, token: str) -> tuple[str, int]:
        """A short-lived access token for an API token: (token, seconds it lasts)."""
        invalid = Unauthenticated("The API token is not valid.")
        if not token.startswith(API_TOKEN_PREFIX) or len(token) > 200:
            raise invalid
        now = now_ms()
        async with self.context.unit_of_work() as work:
            conn = work.conn
            row = await repo.api_token_by_hash(conn, secret_hash(token))
            if row is None or row.revoked_at is not None:
                raise invalid
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthenticated("The API token has expired.")
            user = await repo.user_by_id(conn, row.user_id)
            if user is None or user.status != "active":
                raise invalid
            session_id = new_id()
            expires = now + self.context.access_ttl_ms + REVOCATION_MARGIN_MS
            await repo.insert_session(
                conn,
                repo.Session(session_id, user.id, "api_token", row.id, now, expires, None, None),
            )
            work.record("session.started", session_id)
            await repo.update_api_token(conn, row.id, last_used_at=now)
        access = await self.issuer.access_token(
            user_id=user.id,
            role=user.role,
            session_id=session_id,
            scope=row.permissions,
            api_token_id=row.id,
        )
        return access, self.context.settings.access_token_ttl_seconds
