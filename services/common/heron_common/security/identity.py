"""Verifying access tokens where they arrive: the gateway and every service.

An `Authenticator` holds what verification needs, kept fresh from the auth service: the public
signing keys (refreshed when they change or an unknown `kid` shows up), the revoked sessions and
the role → permissions mapping. It polls the auth service every `poll_seconds`, so logout, role
change and disabled users take effect on access tokens within about that long, with or without
Redis. If the state cannot be refreshed for `stale_after_seconds`, authenticated requests fail
with 503 rather than trust revocations it may have missed; anonymous requests keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
import orjson
from cms.auth.v1 import auth_pb2 as pb
from cms.auth.v1 import auth_pb2_grpc

from heron_common.cache.lru import BoundedLRU
from heron_common.errors import DomainError, Unauthenticated, Unavailable
from heron_common.rpc.client import call
from heron_common.security.permissions import Principal, anonymous

logger = logging.getLogger("heron.identity")

ALGORITHM = "EdDSA"
MAX_TOKEN_BYTES = 4096
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "sid", "iss", "aud"]


@dataclass
class StateUpdate:
    cursor: int
    revocations: list[tuple[str, int]]  # (session id, expires at epoch ms)
    roles_version: str
    roles: dict[str, frozenset[str]] | None  # None: unchanged
    keys_version: str


class AuthStateSource(Protocol):
    async def jwks(self) -> tuple[dict[str, Any], str]: ...

    async def state(self, cursor: int, roles_version: str) -> StateUpdate: ...


def state_update(reply: pb.AuthState, roles_version: str) -> StateUpdate:
    roles = None
    if reply.roles_version != roles_version:
        roles = {r.name: frozenset(r.permissions) for r in reply.roles}
    return StateUpdate(
        cursor=reply.cursor,
        revocations=[(r.session_id, r.expires_at) for r in reply.revocations],
        roles_version=reply.roles_version,
        roles=roles,
        keys_version=reply.keys_version,
    )


class GrpcAuthSource:
    """The auth service over gRPC, as seen by the gateway and the other services."""

    def __init__(self, stub: auth_pb2_grpc.AuthServiceAsyncStub, timeout: float = 2.0) -> None:
        self.stub = stub
        self.timeout = timeout

    async def jwks(self) -> tuple[dict[str, Any], str]:
        reply = await call(self.stub.GetJwks, pb.GetJwksRequest(), timeout=self.timeout)
        return orjson.loads(reply.jwks_json), reply.keys_version

    async def state(self, cursor: int, roles_version: str) -> StateUpdate:
        reply = await call(
            self.stub.GetAuthState,
            pb.GetAuthStateRequest(cursor=cursor, roles_version=roles_version),
            timeout=self.timeout,
        )
        return state_update(reply, roles_version)


CSRF_MISMATCH = (
    "Cookie-authenticated requests that change something need the X-CSRF-Token header set to "
    "the value of the csrf_token cookie this session was given at sign-in."
)


def csrf_matches(expected_hash: str | None, given: str) -> bool:
    """Whether `given` is the session's CSRF token (stored and carried as its SHA-256 hex),
    compared in constant time."""
    if not expected_hash or not given or len(given) > 200:
        return False
    digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()
    return hmac.compare_digest(expected_hash.encode(), digest.encode())


def token_digest(token: str) -> bytes:
    """The cache key of a token: a hash of all of it, never a prefix."""
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    def __init__(
        self,
        source: AuthStateSource,
        *,
        issuer: str,
        audience: str,
        poll_seconds: float = 1.0,
        stale_after_seconds: float = 15.0,
        leeway_seconds: float = 5.0,
        verified_cache_size: int = 10_000,
    ) -> None:
        self.source = source
        self.issuer = issuer
        self.audience = audience
        self.poll_seconds = poll_seconds
        self.stale_after_seconds = stale_after_seconds
        self.leeway = leeway_seconds
        self._keys: dict[str, Any] = {}
        self._keys_version = ""
        self._keys_fetched_at = 0.0
        self._keys_lock = asyncio.Lock()
        self._cursor = 0
        self._revoked: dict[str, int] = {}
        self._roles: dict[str, frozenset[str]] = {}
        self._anonymous: tuple[dict[str, frozenset[str]], Principal] | None = None
        self._roles_version = ""
        self._synced_at: float | None = None
        self._first_sync = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Claims of tokens whose signature and claims were checked, by the hash of the whole
        # token. Expiry and revocation are checked again on every use.
        self._verified: BoundedLRU[bytes, dict[str, Any]] = BoundedLRU(verified_cache_size)
        self._principals: BoundedLRU[bytes, tuple[dict[str, frozenset[str]], Principal]] = (
            BoundedLRU(verified_cache_size)
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """First sync (failure tolerated: the poller keeps trying), then poll in the background."""
        with contextlib.suppress(DomainError):
            await self.sync()
        self._task = asyncio.create_task(self._poll(), name="auth-state-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        failing = False
        while True:
            # Until the first sync, retry quickly: nothing signed-in works before it.
            await asyncio.sleep(self.poll_seconds if self.ready else min(self.poll_seconds, 0.1))
            try:
                await self.sync()
                if failing:
                    logger.info("auth state reachable again")
                failing = False
            except DomainError as exc:
                if not failing:
                    logger.warning("cannot refresh auth state", extra={"error": exc.message})
                failing = True
            except Exception:
                logger.exception("auth state refresh failed")
                failing = True

    async def sync(self) -> None:
        """Fetch revocations and role changes since the last sync (and keys if they changed)."""
        update = await self.source.state(self._cursor, self._roles_version)
        now_ms = int(time.time() * 1000)
        for session_id, expires_at in update.revocations:
            self._revoked[session_id] = expires_at
        if update.cursor < self._cursor:  # the auth store was reset: start over
            self._revoked = dict(update.revocations)
        self._cursor = update.cursor
        self._revoked = {s: e for s, e in self._revoked.items() if e > now_ms}
        if update.roles is not None:
            self._roles = update.roles
            self._roles_version = update.roles_version
        if update.keys_version != self._keys_version:
            await self._refresh_keys(force=True)
        self._synced_at = time.monotonic()
        self._first_sync.set()

    async def _refresh_keys(self, *, force: bool = False) -> None:
        async with self._keys_lock:
            # An unknown kid in a forged token must not turn into a flood of key fetches.
            if not force and time.monotonic() - self._keys_fetched_at < 1.0:
                return
            jwks, version = await self.source.jwks()
            keys: dict[str, Any] = {}
            for entry in jwks.get("keys", []):
                with contextlib.suppress(jwt.PyJWKError, KeyError, ValueError):
                    keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM).key
            self._keys, self._keys_version = keys, version
            self._keys_fetched_at = time.monotonic()

    # -- state ---------------------------------------------------------------------------
    @property
    def role_permissions(self) -> Mapping[str, frozenset[str]]:
        return self._roles

    @property
    def ready(self) -> bool:
        return self._synced_at is not None

    async def wait_ready(self) -> None:
        """Return once the state has been fetched (tokens can be verified)."""
        await self._first_sync.wait()

    def anonymous(self) -> Principal:
        """The principal of a caller without credentials: the `public` role's permissions,
        known only once the state was fetched (until then, 503 rather than guess)."""
        if not self.ready:
            raise Unavailable("Permissions cannot be checked right now; retry shortly.")
        roles = self._roles
        if self._anonymous is None or self._anonymous[0] is not roles:
            self._anonymous = (roles, anonymous(roles))  # one per role state: it is immutable
        return self._anonymous[1]

    def is_revoked(self, session_id: str) -> bool:
        expires = self._revoked.get(session_id)
        return expires is not None and expires > time.time() * 1000

    def _check_fresh(self) -> None:
        if self._synced_at is None or (
            time.monotonic() - self._synced_at > self.stale_after_seconds
        ):
            raise Unavailable(
                "Signed-in requests cannot be verified right now (the auth service is "
                "unreachable); retry shortly."
            )

    # -- verification --------------------------------------------------------------------
    async def verify(self, token: str) -> Principal:
        """The principal of a valid access token; `Unauthenticated` for anything else."""
        if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise Unauthenticated("The access token is malformed.")
        digest = token_digest(token)
        claims = self._verified.get(digest)
        if claims is None:
            claims = await self._decode(token)
            self._verified.put(digest, claims)
        elif claims["exp"] + self.leeway < time.time():
            self._verified.pop(digest)
            self._principals.pop(digest)
            raise Unauthenticated("The access token has expired; refresh it or sign in again.")
        self._check_fresh()
        if self.is_revoked(claims["sid"]):
            raise Unauthenticated("This session has ended; sign in again.")
        roles = self._roles
        known = self._principals.get(digest)
        if known is not None and known[0] is roles:  # the same token under the same roles
            return known[1]
        role = str(claims.get("role", ""))
        permissions = roles.get(role, frozenset())
        scope = claims.get("scope")
        if isinstance(scope, list):
            permissions = permissions & frozenset(str(p) for p in scope)
        principal = Principal(
            user_id=str(claims["sub"]),
            role=role,
            permissions=permissions,
            session_id=str(claims["sid"]),
            api_token_id=str(claims.get("tid", "")),
            token=token,
            expires_at=float(claims["exp"]),
            csrf_hash=str(claims.get("csrf", "")),
        )
        # Immutable, so kept for the token's next requests: expiry and revocation are still
        # checked above every time, and a change of the roles makes a new one.
        self._principals.put(digest, (roles, principal))
        return principal

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is malformed.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("The access token is not signed with an accepted algorithm.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("The access token names no signing key.")
        key = self._keys.get(kid)
        if key is None:
            try:
                await self._refresh_keys()
            except DomainError:
                raise Unavailable(
                    "Signing keys cannot be fetched right now; retry shortly."
                ) from None
            key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("The access token is signed with an unknown key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "The access token has expired; refresh it or sign in again."
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is not valid.") from None
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
            raise Unauthenticated("The access token is not valid.")
        return claims


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None for another scheme."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()
