"""Auth use cases, second part: managing users, roles and API tokens.

Nobody hands out more than they hold: giving a role, changing a role's permissions or scoping
an API token needs every permission involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heron_common.errors import (
    ErrorDetail,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from heron_common.ids import is_id, new_id, now_ms
from heron_common.jsondoc import check_text
from heron_common.security.permissions import (
    ADMIN_ROLE,
    PUBLIC_ROLE,
    Principal,
    covers,
    invalid_permissions,
    not_for_anonymous,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth import repository as repo
from heron_auth.passwords import check_password
from heron_auth.profile import Profile
from heron_auth.service import (
    REVOCATION_MARGIN_MS,
    STATUSES,
    AuthCore,
    Row,
    profile_updates,
    username_taken,
)
from heron_auth.tokens import API_TOKEN_PREFIX, new_api_token, secret_hash


class AuthService(AuthCore):
    """Every auth use case."""

    # -- user management ---------------------------------------------------------------------
    async def _role_permissions(self, conn: AsyncConnection, role: str) -> list[str]:
        row = await repo.get_role(conn, role)
        if row is None or role == PUBLIC_ROLE:
            raise InvalidArgument(
                f"There is no role {role!r}.", [ErrorDetail("role", "an existing role")]
            )
        return list(row["permissions"])

    @staticmethod
    def _check_may_grant(principal: Principal, permissions: Iterable[str], what: str) -> None:
        """Nobody hands out more than they hold: no escalation through roles or tokens."""
        missing = [p for p in permissions if not covers(principal.permissions, p)]
        if missing:
            raise PermissionDenied(
                f"{what} needs permissions you do not hold: {', '.join(sorted(missing))}."
            )

    async def list_users(self, limit: int, offset: int) -> tuple[list[Row], int]:
        async with self.database.read() as conn:
            return await repo.list_users(conn, limit, offset), await repo.count_users(conn)

    async def get_user(self, user_id: str) -> Row:
        async with self.database.read() as conn:
            user = await repo.user_by_id(conn, user_id) if is_id(user_id) else None
        if user is None:
            raise NotFound(f"There is no user {user_id!r}.")
        return user

    async def create_user(
        self, principal: Principal, *, email: str, password: str, role: str, profile: Profile
    ) -> Row:
        async with self.database.read() as conn:
            permissions = await self._role_permissions(conn, role)
        self._check_may_grant(principal, permissions, f"Giving the role {role!r}")
        return await self.add_user(email=email, password=password, role=role, profile=profile)

    async def update_user(
        self,
        principal: Principal,
        user_id: str,
        *,
        profile: Profile,
        role: str | None,
        status: str | None,
        password: str | None,
    ) -> Row:
        user = await self.get_user(user_id)
        updates: dict[str, Any] = {}
        if status is not None and status != user["status"]:
            if status not in STATUSES:
                raise InvalidArgument(
                    "status must be active or disabled.", [ErrorDetail("status", "active|disabled")]
                )
            updates["status"] = status
        if password is not None:
            check_password(password, min_length=self.settings.password_min_length)
            updates["password_hash"] = await self.passwords.hash(password)
        try:
            return await self._update_user(principal, user, updates, profile, role)
        except IntegrityError:
            raise username_taken() from None

    async def _update_user(
        self,
        principal: Principal,
        user: Row,
        updates: dict[str, Any],
        profile: Profile,
        role: str | None,
    ) -> Row:
        user_id = user["id"]
        async with self._unit_of_work() as work:
            conn = work.conn
            updates.update(await profile_updates(conn, user, profile, self_service=False))
            current = await self._role_permissions(conn, user["role"])
            # Changing someone's account at all needs at least their powers.
            self._check_may_grant(principal, current, f"Changing a user with role {user['role']!r}")
            if role is not None and role != user["role"]:
                self._check_may_grant(
                    principal, await self._role_permissions(conn, role), f"Giving the role {role!r}"
                )
                updates["role"] = role
            if user["role"] == ADMIN_ROLE and (
                updates.get("role", ADMIN_ROLE) != ADMIN_ROLE or updates.get("status") == "disabled"
            ):
                await self._keep_an_admin(conn)
            if not updates:
                return user
            updates["updated_at"] = now_ms()
            await repo.update_user(conn, user_id, **updates)
            work.record("user.updated", user_id)
            if {"role", "status", "password_hash"} & updates.keys():
                await self._revoke_user(work, user_id)
        return {**user, **updates}

    async def _keep_an_admin(self, conn: AsyncConnection) -> None:
        if await repo.count_active_with_role(conn, ADMIN_ROLE) <= 1:
            raise PermissionDenied("This is the last active admin; make another admin first.")

    async def delete_user(self, principal: Principal, user_id: str) -> None:
        user = await self.get_user(user_id)
        if user_id == principal.user_id:
            raise PermissionDenied("You cannot delete your own account.")
        async with self._unit_of_work() as work:
            conn = work.conn
            current = await self._role_permissions(conn, user["role"])
            self._check_may_grant(principal, current, f"Deleting a user with role {user['role']!r}")
            if user["role"] == ADMIN_ROLE and user["status"] == "active":
                await self._keep_an_admin(conn)
            await self._revoke_user(work, user_id)
            await repo.delete_user(conn, user_id)
            work.record("user.deleted", user_id)

    # -- roles -------------------------------------------------------------------------------
    async def list_roles(self) -> list[Row]:
        async with self.database.read() as conn:
            return await repo.list_roles(conn)

    async def update_role(
        self, principal: Principal, name: str, permissions: list[str], description: str | None
    ) -> Row:
        bad = invalid_permissions(permissions)
        if bad:
            raise InvalidArgument(
                f"Unknown permission: {bad[0][:100]}.",
                [ErrorDetail("permissions", f"unknown: {p[:100]}") for p in bad[:20]],
            )
        if name == ADMIN_ROLE:
            raise PermissionDenied("The admin role always holds every permission.")
        if name == PUBLIC_ROLE:
            refused = not_for_anonymous(permissions)
            if refused:
                raise InvalidArgument(
                    f"The public role (anonymous callers) may only read; it cannot hold "
                    f"{', '.join(sorted(set(refused)))}.",
                    [
                        ErrorDetail("permissions", f"not for anonymous callers: {p}")
                        for p in sorted(set(refused))[:20]
                    ],
                )
        self._check_may_grant(principal, permissions, f"Changing the role {name!r}")
        if description is not None:
            check_text(description, "description")
        async with self._unit_of_work() as work:
            conn = work.conn
            role = await repo.get_role(conn, name)
            if role is None:
                raise NotFound(f"There is no role {name!r}.")
            self._check_may_grant(principal, role["permissions"], f"Changing the role {name!r}")
            values: dict[str, Any] = {
                "permissions": sorted(set(permissions)),
                "updated_at": now_ms(),
            }
            if description is not None:
                values["description"] = description[:1000]
            await repo.update_role(conn, name, **values)
            work.record("role.updated", name)
        return {**role, **values}

    # -- API tokens --------------------------------------------------------------------------
    async def create_api_token(
        self, principal: Principal, name: str, permissions: list[str], expires_at: int
    ) -> tuple[Row, str]:
        if principal.api_token_id:
            raise PermissionDenied("API tokens cannot create API tokens.")
        check_text(name, "name")
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidArgument(
                "name is required (at most 200 characters).", [ErrorDetail("name", "1-200 chars")]
            )
        bad = invalid_permissions(permissions)
        if bad:
            raise InvalidArgument(
                f"Unknown permission: {bad[0][:100]}.",
                [ErrorDetail("permissions", f"unknown: {p[:100]}") for p in bad[:20]],
            )
        self._check_may_grant(principal, permissions, "This token")
        now = now_ms()
        if expires_at and expires_at <= now:
            raise InvalidArgument(
                "expires_at must be in the future.", [ErrorDetail("expires_at", "in the past")]
            )
        token = new_api_token()
        row: Row = {
            "id": new_id(),
            "user_id": principal.user_id,
            "name": name,
            "prefix": token[: len(API_TOKEN_PREFIX) + 6],
            "token_hash": secret_hash(token),
            "permissions": sorted(set(permissions)) if permissions else None,
            "created_at": now,
            "expires_at": expires_at or None,
            "last_used_at": None,
            "revoked_at": None,
        }
        async with self._unit_of_work() as work:
            conn = work.conn
            await repo.insert_api_token(conn, **row)
            work.record("api_token.created", row["id"])
        return row, token

    async def list_api_tokens(self, principal: Principal) -> list[Row]:
        async with self.database.read() as conn:
            return await repo.list_api_tokens(conn, principal.user_id)

    async def revoke_api_token(self, principal: Principal, token_id: str) -> None:
        async with self._unit_of_work() as work:
            conn = work.conn
            row = await repo.api_token_by_id(conn, token_id) if is_id(token_id) else None
            if row is None or (
                row["user_id"] != principal.user_id and not principal.may_all("users.update")
            ):
                raise NotFound(f"There is no API token {token_id!r}.")
            if row["revoked_at"] is None:
                await repo.update_api_token(conn, token_id, revoked_at=now_ms())
                work.record("api_token.revoked", token_id)
            await self._revoke_sessions(
                work, await repo.live_session_ids(conn, now_ms(), api_token_id=token_id)
            )

    async def exchange_api_token(self, token: str) -> tuple[str, int]:
        invalid = Unauthenticated("The API token is not valid.")
        if not token.startswith(API_TOKEN_PREFIX) or len(token) > 200:
            raise invalid
        now = now_ms()
        async with self._unit_of_work() as work:
            conn = work.conn
            row = await repo.api_token_by_hash(conn, secret_hash(token))
            if row is None or row["revoked_at"] is not None:
                raise invalid
            if row["expires_at"] is not None and row["expires_at"] <= now:
                raise Unauthenticated("The API token has expired.")
            user = await repo.user_by_id(conn, row["user_id"])
            if user is None or user["status"] != "active":
                raise invalid
            session_id = new_id()
            await repo.insert_session(
                conn,
                id=session_id,
                user_id=user["id"],
                kind="api_token",
                api_token_id=row["id"],
                created_at=now,
                expires_at=now + self.access_ttl_ms + REVOCATION_MARGIN_MS,
                revoked_at=None,
            )
            work.record("session.started", session_id)
            await repo.update_api_token(conn, row["id"], last_used_at=now)
        access = await self.issuer.access_token(
            user_id=user["id"],
            role=user["role"],
            session_id=session_id,
            scope=row["permissions"],
            api_token_id=row["id"],
        )
        return access, self.settings.access_token_ttl_seconds
