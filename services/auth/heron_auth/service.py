"""Auth use cases, first part: sign-in sessions, the caller's own account, the verifiers'
state (`heron_auth.accounts` adds the management of users, roles and API tokens)."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from heron_common.db import Database
from heron_common.errors import (
    AlreadyExists,
    ErrorDetail,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    validation_failed,
)
from heron_common.events import EventBus, UnitOfWork, unit_of_work
from heron_common.ids import new_id, now_ms
from heron_common.security.identity import CSRF_MISMATCH, StateUpdate, csrf_matches
from heron_common.security.permissions import (
    ADMIN_ROLE,
    ANONYMOUS_PERMISSIONS,
    PERMISSIONS,
    PUBLIC_ROLE,
    Principal,
    not_for_anonymous,
)
from sqlalchemy.exc import IntegrityError
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
from heron_auth.roles import BUILTIN_ROLES
from heron_auth.settings import AuthSettings
from heron_auth.throttle import SignInThrottle, address_hash
from heron_auth.tokens import (
    TokenIssuer,
    new_refresh_token,
    secret_hash,
)

logger = logging.getLogger("heron.auth")

Row = dict[str, Any]
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL_LENGTH = 254
STATUSES = ("active", "disabled")
# SonicJS's wording, which its clients show as it is.
BAD_CREDENTIALS = "Invalid email or password"
# Revocations outlive the access tokens they cover by this much (verifiers' clock leeway).
REVOCATION_MARGIN_MS = 60_000


def normalize_email(email: str) -> tuple[str, str]:
    """(email as stored, comparison key): NFKC-normalized and in lower case, and case-folded
    for the key."""
    normalized = unicodedata.normalize("NFKC", email).strip().lower()
    if (
        len(normalized) > MAX_EMAIL_LENGTH
        or not EMAIL.fullmatch(normalized)
        or not normalized.isprintable()
    ):
        raise validation_failed(
            "the email address is not valid.", [ErrorDetail("email", "a valid email address")]
        )
    return normalized, normalized.casefold()


def _display_name(value: str, email: str) -> str:
    return check_name(value, "display_name", max_length=200) or email.split("@", 1)[0]


NO_PROFILE = Profile()


def username_taken() -> AlreadyExists:
    return _taken("username")


def _taken(field: str) -> AlreadyExists:
    return AlreadyExists(
        f"A user with this {field} already exists.", [ErrorDetail(field, "already used")]
    )


def _chosen_username(value: str, *, self_service: bool) -> str:
    name = check_username(value)
    if self_service and name in RESERVED_USERNAMES:
        raise validation_failed(
            "this username is reserved; choose another.", [ErrorDetail("username", "reserved")]
        )
    return name


async def profile_updates(
    conn: AsyncConnection, user: Row, profile: Profile, *, self_service: bool
) -> dict[str, Any]:
    """The columns `profile` changes on `user`; a username another account has is a 409."""
    updates: dict[str, Any] = {}
    if profile.first_name is not None:
        updates["first_name"] = check_name(profile.first_name, "firstName")
    if profile.last_name is not None:
        updates["last_name"] = check_name(profile.last_name, "lastName")
    if profile.display_name is not None:
        updates["display_name"] = _display_name(profile.display_name, user["email"])
    if profile.username is not None:
        name = check_username(profile.username)
        if name != user["username"]:
            name = _chosen_username(name, self_service=self_service)
            if await repo.user_by_username(conn, name) is not None:
                raise _taken("username")
            updates["username"] = name
    return {k: v for k, v in updates.items() if v != user.get(k)}


@dataclass
class Issued:
    user: Row
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    # Set when a session starts (for the browser's cookie); refreshes keep the session's.
    csrf_token: str = ""


def account_key(email: str) -> str:
    """One rate-limit key per account whatever the spelling, valid address or not."""
    try:
        return normalize_email(email)[1]
    except InvalidArgument:
        return unicodedata.normalize("NFKC", email).strip().casefold()[:MAX_EMAIL_LENGTH]


class AuthCore:
    """Sign-in sessions, the caller's own account, and what verifiers need."""

    def __init__(
        self,
        database: Database,
        settings: AuthSettings,
        passwords: Passwords,
        issuer: TokenIssuer,
        throttle: SignInThrottle,
    ) -> None:
        self.database = database
        self.settings = settings
        self.passwords = passwords
        self.issuer = issuer
        self.throttle = throttle
        self.access_ttl_ms = settings.access_token_ttl_seconds * 1000
        # Every write's events, after its commit (for the plugins' hooks and outbox to come).
        self.events = EventBus()

    def _unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.database, self.events)

    # -- bootstrap ---------------------------------------------------------------------------
    async def ensure_builtin_roles(self) -> None:
        """Add built-in roles a store lacks; never overwrite what an admin edited. The admin
        role always holds every permission, including ones added by a newer version."""
        async with self._unit_of_work() as work:
            conn = work.conn
            existing = {r["name"]: r for r in await repo.list_roles(conn)}
            for name, description, permissions in BUILTIN_ROLES:
                if name not in existing:
                    await repo.insert_role(
                        conn,
                        name=name,
                        description=description,
                        permissions=list(permissions),
                        builtin=True,
                        updated_at=now_ms(),
                    )
                elif name == ADMIN_ROLE and existing[name]["permissions"] != list(PERMISSIONS):
                    await repo.update_role(
                        conn, name, permissions=list(PERMISSIONS), updated_at=now_ms()
                    )
                elif name == PUBLIC_ROLE and not_for_anonymous(existing[name]["permissions"]):
                    # Stored before anonymous callers were limited to reading: take it back.
                    kept = [p for p in existing[name]["permissions"] if p in ANONYMOUS_PERMISSIONS]
                    logger.warning(
                        "the public role held permissions anonymous callers may not have; removed",
                        extra={"removed": not_for_anonymous(existing[name]["permissions"])},
                    )
                    await repo.update_role(conn, name, permissions=kept, updated_at=now_ms())

    async def add_first_admin(self, email: str, password: str) -> Row:
        """The store's first admin, named `HERON_ADMIN_USERNAME` (`admin`)."""
        return await self.add_user(
            email=email,
            password=password,
            role=ADMIN_ROLE,
            profile=Profile(username=self.settings.admin_username),
        )

    async def has_users(self) -> bool:
        async with self.database.read() as conn:
            return await repo.count_users(conn) > 0

    async def add_user(
        self,
        *,
        email: str,
        password: str,
        role: str,
        profile: Profile = NO_PROFILE,
        self_service: bool = False,
    ) -> Row:
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
        row: Row = {
            "id": new_id(),
            "email": stored,
            "email_key": key,
            "username": chosen,
            "first_name": first,
            "last_name": last,
            "display_name": name,
            "password_hash": password_hash,
            "status": "active",
            "role": role,
            "created_at": now,
            "updated_at": now,
            "last_login_at": None,
        }
        for attempt in range(3):
            try:
                async with self._unit_of_work() as work:
                    conn = work.conn
                    if await repo.get_role(conn, role) is None or role == PUBLIC_ROLE:
                        raise InvalidArgument(
                            f"There is no role {role!r}.",
                            [ErrorDetail("role", "an existing role")],
                        )
                    if await repo.user_by_email_key(conn, key) is not None:
                        raise _taken("email")
                    if chosen is not None:
                        if await repo.user_by_username(conn, chosen) is not None:
                            raise _taken("username")
                    else:
                        row["username"] = await self._free_username(
                            conn, derived_username(stored), allow_reserved=not self_service
                        )
                    await repo.insert_user(conn, **row)
                    work.record("user.created", row["id"])
                return row
            except IntegrityError:
                # A concurrent create took the email or the username between check and insert;
                # a derived username is simply derived again.
                if chosen is not None or attempt == 2:
                    raise AlreadyExists(
                        "A user with this email or username already exists.",
                        [ErrorDetail("email", "already used")],
                    ) from None
        raise AssertionError("unreachable")

    @staticmethod
    async def _free_username(conn: AsyncConnection, base: str, *, allow_reserved: bool) -> str:
        for candidate in username_candidates(base, allow_reserved=allow_reserved):
            if await repo.user_by_username(conn, candidate) is None:
                return candidate
        raise AssertionError("unreachable: the candidates are endless")

    # -- sessions ----------------------------------------------------------------------------
    async def login(self, email: str, password: str, address: str) -> Issued:
        """Sign in from `address` (the client's, as vouched for; see `throttle`)."""
        account = account_key(email)
        async with self.database.read() as conn:
            user = await repo.user_by_email_key(conn, account)

        async def known_address() -> bool:
            if user is None:
                return False
            since = now_ms() - repo.KNOWN_ADDRESS_DAYS * 86_400_000
            async with self.database.read() as conn:
                return await repo.address_known(conn, user["id"], address_hash(address), since)

        await self.throttle.before_login(account, address, known_address)
        # Always verify a hash, so an unknown account takes as long as a wrong password.
        if not await self.passwords.verify(user["password_hash"] if user else None, password):
            failed = await self.throttle.login_failed(account, address)
            raise Unauthenticated(BAD_CREDENTIALS, headers=failed.headers())
        assert user is not None
        await self.throttle.login_succeeded(account, address)
        if user["status"] != "active":
            raise Unauthenticated("This account is disabled.")
        now = now_ms()
        updates: dict[str, Any] = {"last_login_at": now}
        if self.passwords.needs_rehash(user["password_hash"]):
            updates["password_hash"] = await self.passwords.hash(password)
        async with self._unit_of_work() as work:
            conn = work.conn
            await repo.update_user(conn, user["id"], **updates)
            work.record("user.signed_in", user["id"])
            await repo.remember_address(conn, user["id"], address_hash(address), now)
            issued = await self._start_session(work, user)
        issued.user = {**user, "last_login_at": now}
        return issued

    async def register(self, email: str, password: str, profile: Profile) -> Issued:
        if not self.settings.registration_enabled:
            raise PermissionDenied("Registration is closed; ask an administrator for an account.")
        role = self.settings.registration_role
        if role in (ADMIN_ROLE, PUBLIC_ROLE):
            raise PermissionDenied("Registration is misconfigured; ask an administrator.")
        user = await self.add_user(
            email=email, password=password, role=role, profile=profile, self_service=True
        )
        async with self._unit_of_work() as work:
            return await self._start_session(work, user)

    async def _start_session(self, work: UnitOfWork, user: Row) -> Issued:
        conn = work.conn
        now = now_ms()
        session_id = new_id()
        expires = now + self.settings.session_max_seconds * 1000
        # Bound to this session: a cookie an attacker planted cannot match it.
        csrf_token = secrets.token_urlsafe(24)
        csrf_hash = secret_hash(csrf_token)
        await repo.insert_session(
            conn,
            id=session_id,
            user_id=user["id"],
            kind="password",
            api_token_id=None,
            created_at=now,
            expires_at=expires,
            revoked_at=None,
            csrf_hash=csrf_hash,
        )
        refresh = await self._new_refresh_token(conn, session_id, expires)
        access = await self.issuer.access_token(
            user_id=user["id"], role=user["role"], session_id=session_id, csrf_hash=csrf_hash
        )
        work.record("session.started", session_id)
        return Issued(
            user,
            access,
            refresh,
            self.settings.access_token_ttl_seconds,
            session_id,
            csrf_token=csrf_token,
        )

    async def _new_refresh_token(
        self, conn: AsyncConnection, session_id: str, session_expires: int
    ) -> str:
        token = new_refresh_token()
        now = now_ms()
        await repo.insert_refresh_token(
            conn,
            token_hash=secret_hash(token),
            session_id=session_id,
            created_at=now,
            # Never beyond the session's absolute end: refreshing cannot extend a session.
            expires_at=min(now + self.settings.refresh_token_ttl_seconds * 1000, session_expires),
            used_at=None,
        )
        return token

    async def refresh(
        self, refresh_token: str, *, from_cookie: bool = False, csrf_token: str = ""
    ) -> Issued:
        """New tokens for a refresh token; one sent by the browser's cookie must come with the
        session's CSRF token (a page on another site can make the browser send the cookie)."""
        invalid = Unauthenticated("The refresh token is not valid; sign in again.")
        if not refresh_token or len(refresh_token) > 200:
            raise invalid
        token_hash = secret_hash(refresh_token)
        now = now_ms()
        async with self._unit_of_work() as work:
            conn = work.conn
            row = await repo.refresh_token(conn, token_hash)
            if row is None:
                raise invalid
            session_id = row["session_id"]
            if row["session_revoked_at"] is not None:
                raise invalid
            if from_cookie and not csrf_matches(row["session_csrf_hash"], csrf_token):
                raise PermissionDenied(CSRF_MISMATCH)
            if row["expires_at"] <= now or row["session_expires_at"] <= now:
                raise Unauthenticated("The session has expired; sign in again.")
            claimed = await repo.claim_refresh_token(conn, token_hash, now)
            user = await repo.user_by_id(conn, row["user_id"])
            if claimed and user is not None and user["status"] == "active":
                new_refresh = await self._new_refresh_token(
                    conn, session_id, row["session_expires_at"]
                )
                access = await self.issuer.access_token(
                    user_id=user["id"],
                    role=user["role"],
                    session_id=session_id,
                    csrf_hash=row["session_csrf_hash"] or "",
                )
                return Issued(
                    user, access, new_refresh, self.settings.access_token_ttl_seconds, session_id
                )
        # A token used before: someone holds a copy. End the whole family.
        if not claimed:
            logger.warning("refresh token reuse; session revoked", extra={"session": session_id})
        async with self._unit_of_work() as work:
            conn = work.conn
            await self._revoke_sessions(work, [(session_id, row["session_expires_at"])])
        if not claimed:
            raise Unauthenticated(
                "This refresh token was already used, so the session was ended to protect the "
                "account; sign in again."
            )
        raise invalid

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        async with self._unit_of_work() as work:
            conn = work.conn
            if refresh_token:
                row = await repo.refresh_token(conn, secret_hash(refresh_token))
                if row is not None:
                    await self._revoke_sessions(work, [(row["session_id"], now_ms())])
                    return
            if principal.anonymous:
                raise Unauthenticated("Nothing to sign out of: send a token.")
            await self._revoke_sessions(work, [(principal.session_id, now_ms())])

    async def _revoke_sessions(self, work: UnitOfWork, sessions: Iterable[tuple[str, int]]) -> None:
        """Revoke sessions and publish them to verifiers until their last access token expired."""
        now = now_ms()
        entries = list(sessions)
        await repo.mark_sessions_revoked(work.conn, [s for s, _ in entries], now)
        horizon = now + self.access_ttl_ms + REVOCATION_MARGIN_MS
        await repo.insert_revocations(work.conn, [(s, horizon) for s, _ in entries])
        for session_id, _ in entries:
            work.record("session.revoked", session_id)

    async def _revoke_user(self, work: UnitOfWork, user_id: str) -> None:
        await self._revoke_sessions(
            work, await repo.live_session_ids(work.conn, now_ms(), user_id=user_id)
        )

    # -- the caller's account ----------------------------------------------------------------
    async def me(self, principal: Principal) -> Row:
        async with self.database.read() as conn:
            user = await repo.user_by_id(conn, principal.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists.")
        return user

    async def update_me(self, principal: Principal, profile: Profile) -> Row:
        user = await self.me(principal)
        try:
            async with self._unit_of_work() as work:
                conn = work.conn
                updates = await profile_updates(conn, user, profile, self_service=True)
                if not updates:
                    return user
                updates["updated_at"] = now_ms()
                await repo.update_user(conn, user["id"], **updates)
                work.record("user.updated", user["id"])
        except IntegrityError:
            raise username_taken() from None
        return {**user, **updates}

    async def change_password(
        self, principal: Principal, current: str, new: str, address: str
    ) -> None:
        """Limited like sign-in: a stolen token must not become a password-guessing oracle."""
        if principal.api_token_id:
            raise PermissionDenied("API tokens cannot change passwords.")
        user = await self.me(principal)
        await self.throttle.before_password_check(user["id"], address)
        if not await self.passwords.verify(user["password_hash"], current):
            failed = await self.throttle.password_check_failed(user["id"])
            raise InvalidArgument(
                "The current password is not correct.",
                [ErrorDetail("current_password", "not correct")],
                headers=failed.headers(),
            )
        await self.throttle.password_check_succeeded(user["id"])
        check_password(new, min_length=self.settings.password_min_length, field="new_password")
        password_hash = await self.passwords.hash(new)
        async with self._unit_of_work() as work:
            conn = work.conn
            await repo.update_user(
                conn, user["id"], password_hash=password_hash, updated_at=now_ms()
            )
            work.record("user.password_changed", user["id"])
            await self._revoke_user(work, user["id"])

    # -- verifiers' state --------------------------------------------------------------------
    async def auth_state(self, cursor: int, roles_version: str) -> tuple[StateUpdate, list[Row]]:
        now = now_ms()
        async with self.database.read() as conn:
            rows = await repo.revocations_since(conn, cursor, now)
            top = await repo.max_revocation_seq(conn)
            roles = await repo.list_roles(conn)
        version = roles_version_of(roles)
        _, keys_version = await self.issuer.jwks()
        update = StateUpdate(
            cursor=top,
            revocations=[(r["session_id"], r["expires_at"]) for r in rows],
            roles_version=version,
            roles=None
            if version == roles_version
            else {r["name"]: frozenset(r["permissions"]) for r in roles},
            keys_version=keys_version,
        )
        return update, roles

    async def prune(self) -> None:
        async with self._unit_of_work() as work:
            conn = work.conn
            await repo.prune(conn, now_ms())


def roles_version_of(roles: list[Row]) -> str:
    body = orjson.dumps(sorted((r["name"], sorted(r["permissions"])) for r in roles))
    return hashlib.sha256(body).hexdigest()[:16]
