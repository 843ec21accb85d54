"""User use cases: accounts (created by the operator, an admin or their owner), the caller's
own account, and managing others'. Nobody hands out more than they hold: giving a role needs
every permission in it, and changing an account needs at least its powers."""

from __future__ import annotations

from typing import Any

from heron_common.emails import normalize_email
from heron_common.errors import (
    ErrorDetail,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    validation_failed,
)
from heron_common.ids import is_id, new_id, now_ms
from heron_common.outbox import actor_of
from heron_common.rpc.paging import Page
from heron_common.security.authz import principal_var
from heron_common.security.permissions import ADMIN_ROLE, Principal
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth import repository as repo
from heron_auth.passwords import Passwords, check_password
from heron_auth.profile import (
    RESERVED_USERNAMES,
    Profile,
    check_name,
    check_username,
    derived_username,
    username_candidates,
)
from heron_auth.repository import User
from heron_auth.service.common import (
    AFTER_REGISTER,
    Context,
    check_may_grant,
    revoke_user_sessions,
    role_permissions,
    taken,
    user_summary,
)
from heron_auth.throttle import SignInThrottle

STATUSES = ("active", "disabled")
NO_PROFILE = Profile()


class Users:
    def __init__(self, context: Context, passwords: Passwords, throttle: SignInThrottle) -> None:
        self.context = context
        self.settings = context.settings
        self.passwords = passwords
        self.throttle = throttle

    # -- creating accounts -------------------------------------------------------------------
    async def add(
        self,
        *,
        email: str,
        password: str,
        role: str,
        profile: Profile = NO_PROFILE,
        self_service: bool = False,
    ) -> User:
        """Create an account (no caller checks: callers decide who may). `self_service`: the
        person is signing themselves up, so the operator's reserved usernames are refused."""
        stored, key = normalize_email(email)
        check_password(password, min_length=self.settings.password_min_length)
        chosen = (
            _chosen_username(profile.username, self_service=self_service)
            if profile.username
            else None
        )
        first = check_name(profile.first_name or "", "firstName")
        last = check_name(profile.last_name or "", "lastName")
        name = _display_name(profile.display_name or f"{first} {last}".strip(), stored)
        password_hash = await self.passwords.hash(password)
        now = now_ms()
        for attempt in range(3):
            try:
                async with self.context.unit_of_work() as work:
                    conn = work.conn
                    await role_permissions(conn, role)
                    if await repo.user_by_email_key(conn, key) is not None:
                        raise repo.EmailTaken()
                    if chosen is not None and await repo.user_by_username(conn, chosen):
                        raise repo.UsernameTaken()
                    username = chosen or await _free_username(
                        conn, derived_username(stored), allow_reserved=not self_service
                    )
                    user = User(
                        id=new_id(),
                        email=stored,
                        email_key=key,
                        username=username,
                        first_name=first,
                        last_name=last,
                        display_name=name,
                        password_hash=password_hash,
                        status="active",
                        role=role,
                        created_at=now,
                        updated_at=now,
                        last_login_at=None,
                    )
                    await repo.insert_user(conn, user)
                    work.record("user.created", user.id)
                    await work.emit(
                        AFTER_REGISTER,
                        user.id,
                        lambda made=user: {  # type: ignore[misc]
                            "user": user_summary(made),
                            "self_service": self_service,
                            "actor": actor_of(principal_var.get()),
                        },
                    )
                return user
            except repo.EmailTaken:
                raise taken("email") from None
            except repo.UsernameTaken:
                # A concurrent create took the username between check and insert; a derived
                # username is simply derived again.
                if chosen is not None or attempt == 2:
                    raise taken("username") from None
        raise AssertionError("unreachable")

    async def add_first_admin(self, email: str, password: str) -> User:
        """The store's first admin, named `HERON_ADMIN_USERNAME` (`admin`)."""
        return await self.add(
            email=email,
            password=password,
            role=ADMIN_ROLE,
            profile=Profile(username=self.settings.admin_username),
        )

    async def has_users(self) -> bool:
        async with self.context.database.read() as conn:
            return await repo.count_users(conn) > 0

    async def create(
        self, principal: Principal, *, email: str, password: str, role: str, profile: Profile
    ) -> User:
        async with self.context.database.read() as conn:
            permissions = await role_permissions(conn, role)
        check_may_grant(principal, permissions, f"Giving the role {role!r}")
        return await self.add(email=email, password=password, role=role, profile=profile)

    # -- the caller's own account ------------------------------------------------------------
    async def me(self, principal: Principal) -> User:
        async with self.context.database.read() as conn:
            user = await repo.user_by_id(conn, principal.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists.")
        return user

    async def update_me(self, principal: Principal, profile: Profile) -> User:
        user = await self.me(principal)
        try:
            async with self.context.unit_of_work() as work:
                updates = await _profile_updates(work.conn, user, profile, self_service=True)
                if not updates:
                    return user
                updates["updated_at"] = now_ms()
                await repo.update_user(work.conn, user.id, **updates)
                work.record("user.updated", user.id)
        except repo.UsernameTaken:
            raise taken("username") from None
        return repo.changed(user, updates)

    async def change_password(
        self, principal: Principal, current: str, new: str, address: str
    ) -> None:
        """Limited like sign-in: a stolen token must not become a password-guessing oracle."""
        if principal.api_token_id:
            raise PermissionDenied("API tokens cannot change passwords.")
        user = await self.me(principal)
        await self.throttle.before_password_check(user.id, address)
        if not await self.passwords.verify(user.password_hash, current):
            failed = await self.throttle.password_check_failed(user.id)
            raise InvalidArgument(
                "The current password is not correct.",
                [ErrorDetail("current_password", "not correct")],
                headers=failed.headers(),
            )
        await self.throttle.password_check_succeeded(user.id)
        check_password(new, min_length=self.settings.password_min_length, field="new_password")
        password_hash = await self.passwords.hash(new)
        async with self.context.unit_of_work() as work:
            await repo.update_user(
                work.conn, user.id, password_hash=password_hash, updated_at=now_ms()
            )
            work.record("user.password_changed", user.id)
            await revoke_user_sessions(self.context, work, user.id)

    # -- managing others' accounts -----------------------------------------------------------
    async def list(self, page: Page) -> tuple[list[User], int]:
        async with self.context.database.read() as conn:
            rows = await repo.list_users(conn, page.limit, page.offset)
            return rows, await repo.count_users(conn)

    async def get(self, user_id: str) -> User:
        async with self.context.database.read() as conn:
            user = await repo.user_by_id(conn, user_id) if is_id(user_id) else None
        if user is None:
            raise NotFound(f"There is no user {user_id!r}.")
        return user

    async def update(
        self,
        principal: Principal,
        user_id: str,
        *,
        profile: Profile,
        role: str | None,
        status: str | None,
        password: str | None,
    ) -> User:
        user = await self.get(user_id)
        updates: dict[str, Any] = {}
        if status is not None and status != user.status:
            if status not in STATUSES:
                raise InvalidArgument(
                    "status must be active or disabled.", [ErrorDetail("status", "active|disabled")]
                )
            updates["status"] = status
        if password is not None:
            check_password(password, min_length=self.settings.password_min_length)
            updates["password_hash"] = await self.passwords.hash(password)
        try:
            async with self.context.unit_of_work() as work:
                conn = work.conn
                updates.update(await _profile_updates(conn, user, profile, self_service=False))
                current = await role_permissions(conn, user.role)
                # Changing someone's account at all needs at least their powers.
                check_may_grant(principal, current, f"Changing a user with role {user.role!r}")
                if role is not None and role != user.role:
                    granted = await role_permissions(conn, role)
                    check_may_grant(principal, granted, f"Giving the role {role!r}")
                    updates["role"] = role
                if user.role == ADMIN_ROLE and (
                    updates.get("role", ADMIN_ROLE) != ADMIN_ROLE
                    or updates.get("status") == "disabled"
                ):
                    await _keep_an_admin(conn)
                if not updates:
                    return user
                updates["updated_at"] = now_ms()
                await repo.update_user(conn, user.id, **updates)
                work.record("user.updated", user.id)
                if {"role", "status", "password_hash"} & updates.keys():
                    await revoke_user_sessions(self.context, work, user.id)
        except repo.UsernameTaken:
            raise taken("username") from None
        return repo.changed(user, updates)

    async def delete(self, principal: Principal, user_id: str) -> None:
        user = await self.get(user_id)
        if user_id == principal.user_id:
            raise PermissionDenied("You cannot delete your own account.")
        async with self.context.unit_of_work() as work:
            current = await role_permissions(work.conn, user.role)
            check_may_grant(principal, current, f"Deleting a user with role {user.role!r}")
            if user.role == ADMIN_ROLE and user.status == "active":
                await _keep_an_admin(work.conn)
            await revoke_user_sessions(self.context, work, user_id)
            await repo.delete_user(work.conn, user_id)
            work.record("user.deleted", user_id)


async def _keep_an_admin(conn: AsyncConnection) -> None:
    if await repo.count_active_with_role(conn, ADMIN_ROLE) <= 1:
        raise PermissionDenied("This is the last active admin; make another admin first.")


def _display_name(value: str, email: str) -> str:
    return check_name(value, "display_name", max_length=200) or email.split("@", 1)[0]


def _chosen_username(value: str, *, self_service: bool) -> str:
    name = check_username(value)
    if self_service and name in RESERVED_USERNAMES:
        raise validation_failed(
            "this username is reserved; choose another.", [ErrorDetail("username", "reserved")]
        )
    return name


async def _free_username(conn: AsyncConnection, base: str, *, allow_reserved: bool) -> str:
    for candidate in username_candidates(base, allow_reserved=allow_reserved):
        if await repo.user_by_username(conn, candidate) is None:
            return candidate
    raise AssertionError("unreachable: the candidates are endless")


async def _profile_updates(
    conn: AsyncConnection, user: User, profile: Profile, *, self_service: bool
) -> dict[str, Any]:
    """The columns `profile` changes on `user`; a username another account has is a 409."""
    updates: dict[str, Any] = {}
    if profile.first_name is not None:
        updates["first_name"] = check_name(profile.first_name, "firstName")
    if profile.last_name is not None:
        updates["last_name"] = check_name(profile.last_name, "lastName")
    if profile.display_name is not None:
        updates["display_name"] = _display_name(profile.display_name, user.email)
    if profile.username is not None:
        name = check_username(profile.username)
        if name != user.username:
            name = _chosen_username(name, self_service=self_service)
            if await repo.user_by_username(conn, name) is not None:
                raise repo.UsernameTaken()
            updates["username"] = name
    return {k: v for k, v in updates.items() if v != getattr(user, k)}
