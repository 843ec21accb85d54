"""Session use cases: sign in, register, refresh, sign out, and the state verifiers poll."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from heron_common.emails import account_key
from heron_common.errors import PermissionDenied, Unauthenticated
from heron_common.events import UnitOfWork
from heron_common.ids import new_id, now_ms
from heron_common.security.identity import CSRF_MISMATCH, StateUpdate, csrf_matches
from heron_common.security.permissions import ADMIN_ROLE, PUBLIC_ROLE, Principal
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth import repository as repo
from heron_auth.passwords import Passwords
from heron_auth.profile import Profile
from heron_auth.repository import Role, User
from heron_auth.service.common import (
    AFTER_LOGIN,
    Context,
    revoke_sessions,
    user_summary,
)
from heron_auth.service.users import Users
from heron_auth.throttle import SignInThrottle, address_hash
from heron_auth.tokens import TokenIssuer, new_refresh_token, secret_hash

logger = logging.getLogger("heron.auth")

# SonicJS's wording, which its clients show as it is.
BAD_CREDENTIALS = "Invalid email or password"


@dataclass
class Issued:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    # Set when a session starts (for the browser's cookie); refreshes keep the session's.
    csrf_token: str = ""


class Sessions:
    def __init__(
        self,
        context: Context,
        passwords: Passwords,
        issuer: TokenIssuer,
        throttle: SignInThrottle,
        users: Users,
    ) -> None:
        self.context = context
        self.settings = context.settings
        self.passwords = passwords
        self.issuer = issuer
        self.throttle = throttle
        self.users = users

    async def login(self, email: str, password: str, address: str) -> Issued:
        """Sign in from `address` (the client's, as vouched for; see `throttle`)."""
        account = account_key(email)
        async with self.context.database.read() as conn:
            user = await repo.user_by_email_key(conn, account)

        async def known_address() -> bool:
            if user is None:
                return False
            since = now_ms() - repo.KNOWN_ADDRESS_DAYS * 86_400_000
            async with self.context.database.read() as conn:
                return await repo.address_known(conn, user.id, address_hash(address), since)

        await self.throttle.before_login(account, address, known_address)
        # Always verify a hash, so an unknown account takes as long as a wrong password.
        if not await self.passwords.verify(user.password_hash if user else None, password):
            failed = await self.throttle.login_failed(account, address)
            raise Unauthenticated(BAD_CREDENTIALS, headers=failed.headers())
        assert user is not None
        await self.throttle.login_succeeded(account, address)
        if user.status != "active":
            raise Unauthenticated("This account is disabled.")
        now = now_ms()
        updates: dict[str, Any] = {"last_login_at": now}
        if self.passwords.needs_rehash(user.password_hash):
            updates["password_hash"] = await self.passwords.hash(password)
        async with self.context.unit_of_work() as work:
            await repo.update_user(work.conn, user.id, **updates)
            work.record("user.signed_in", user.id)
            await repo.remember_address(work.conn, user.id, address_hash(address), now)
            signed_in = repo.changed(user, updates)
            await work.emit(
                AFTER_LOGIN,
                user.id,
                lambda: {"user": user_summary(signed_in), "method": "password"},
            )
            return await self._start(work, signed_in)

    async def account_active(self, email: str) -> bool:
        async with self.context.database.read() as conn:
            user = await repo.user_by_email_key(conn, account_key(email))
        return user is not None and user.status == "active"

    async def sign_in_verified(self, email: str, method: str, address: str) -> Issued:
        """Sign in the account of `email`, which the caller (a Heron process) proved the client
        holds; a session like a password sign-in's, and `auth:afterLogin` with `method`."""
        async with self.context.database.read() as conn:
            user = await repo.user_by_email_key(conn, account_key(email))
        if user is None or user.status != "active":
            raise Unauthenticated(BAD_CREDENTIALS)
        now = now_ms()
        updates: dict[str, Any] = {"last_login_at": now}
        async with self.context.unit_of_work() as work:
            await repo.update_user(work.conn, user.id, **updates)
            work.record("user.signed_in", user.id)
            await repo.remember_address(work.conn, user.id, address_hash(address), now)
            signed_in = repo.changed(user, updates)
            await work.emit(
                AFTER_LOGIN,
                user.id,
                lambda: {"user": user_summary(signed_in), "method": method},
            )
            return await self._start(work, signed_in)

    async def register(self, email: str, password: str, profile: Profile) -> Issued:
        if not self.settings.registration_enabled:
            raise PermissionDenied("Registration is closed; ask an administrator for an account.")
        role = self.settings.registration_role
        if role in (ADMIN_ROLE, PUBLIC_ROLE):
            raise PermissionDenied("Registration is misconfigured; ask an administrator.")
        user = await self.users.add(
            email=email, password=password, role=role, profile=profile, self_service=True
        )
        async with self.context.unit_of_work() as work:
            return await self._start(work, user)

    async def _start(self, work: UnitOfWork, user: User) -> Issued:
        now = now_ms()
        session_id = new_id()
        expires = now + self.settings.session_max_seconds * 1000
        # Bound to this session: a cookie an attacker planted cannot match it.
        csrf_token = secrets.token_urlsafe(24)
        csrf_hash = secret_hash(csrf_token)
        await repo.insert_session(
            work.conn,
            repo.Session(session_id, user.id, "password", None, now, expires, None, csrf_hash),
        )
        refresh = await self._new_refresh_token(work.conn, session_id, expires)
        access = await self.issuer.access_token(
            user_id=user.id, role=user.role, session_id=session_id, csrf_hash=csrf_hash
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
        async with self.context.unit_of_work() as work:
            conn = work.conn
            grant = await repo.refresh_token(conn, token_hash)
            if grant is None or grant.session_revoked_at is not None:
                raise invalid
            if from_cookie and not csrf_matches(grant.session_csrf_hash, csrf_token):
                raise PermissionDenied(CSRF_MISMATCH)
            if grant.expires_at <= now or grant.session_expires_at <= now:
                raise Unauthenticated("The session has expired; sign in again.")
            claimed = await repo.claim_refresh_token(conn, token_hash, now)
            user = await repo.user_by_id(conn, grant.user_id)
            if claimed and user is not None and user.status == "active":
                new_refresh = await self._new_refresh_token(
                    conn, grant.session_id, grant.session_expires_at
                )
                access = await self.issuer.access_token(
                    user_id=user.id,
                    role=user.role,
                    session_id=grant.session_id,
                    csrf_hash=grant.session_csrf_hash or "",
                )
                return Issued(
                    user,
                    access,
                    new_refresh,
                    self.settings.access_token_ttl_seconds,
                    grant.session_id,
                )
        # A token used before: someone holds a copy. End the whole family.
        if not claimed:
            logger.warning(
                "refresh token reuse; session revoked", extra={"session": grant.session_id}
            )
        async with self.context.unit_of_work() as work:
            await revoke_sessions(self.context, work, [grant.session_id])
        if not claimed:
            raise Unauthenticated(
                "This refresh token was already used, so the session was ended to protect the "
                "account; sign in again."
            )
        raise invalid

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        async with self.context.unit_of_work() as work:
            if refresh_token:
                grant = await repo.refresh_token(work.conn, secret_hash(refresh_token))
                if grant is not None:
                    await revoke_sessions(self.context, work, [grant.session_id])
                    return
            if principal.anonymous:
                raise Unauthenticated("Nothing to sign out of: send a token.")
            await revoke_sessions(self.context, work, [principal.session_id])

    # -- verifiers' state --------------------------------------------------------------------
    async def auth_state(self, cursor: int, roles_version: str) -> tuple[StateUpdate, list[Role]]:
        now = now_ms()
        async with self.context.database.read() as conn:
            revoked = await repo.revocations_since(conn, cursor, now)
            top = await repo.max_revocation_seq(conn)
            roles = await repo.list_roles(conn)
        version = roles_version_of(roles)
        _, keys_version = await self.issuer.jwks()
        update = StateUpdate(
            cursor=top,
            revocations=revoked,
            roles_version=version,
            roles=None
            if version == roles_version
            else {r.name: frozenset(r.permissions) for r in roles},
            keys_version=keys_version,
        )
        return update, roles

    async def prune(self) -> None:
        async with self.context.unit_of_work() as work:
            await repo.prune(work.conn, now_ms())


def roles_version_of(roles: list[Role]) -> str:
    body = orjson.dumps(sorted((r.name, sorted(r.permissions)) for r in roles))
    return hashlib.sha256(body).hexdigest()[:16]
