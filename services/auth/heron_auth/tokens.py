"""Issuing tokens: access JWTs signed with the active key, opaque refresh and API tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from typing import Any

from heron_common.db import Database
from heron_common.ids import now_ms
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_auth import repository as repo
from heron_auth.keys import SigningKey, keys_version

API_TOKEN_PREFIX = "heron_"
REFRESH_TOKEN_PREFIX = "hrt_"
# How long a retired key stays published beyond the access token lifetime (clock skew).
KEY_OVERLAP_MS = 60_000
# Other replicas notice a rotation within this long.
KEY_RELOAD_SECONDS = 30.0


def secret_hash(token: str) -> str:
    """Refresh and API tokens are 256-bit random: a plain SHA-256 is a safe, fast lookup key."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenIssuer:
    def __init__(self, database: Database, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.database = database
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._active: SigningKey | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _active_key(self) -> SigningKey:
        if self._active is not None and time.monotonic() - self._loaded_at < KEY_RELOAD_SECONDS:
            return self._active
        async with self._lock:
            if self._active is None or time.monotonic() - self._loaded_at >= KEY_RELOAD_SECONDS:
                await self.ensure_key()
        assert self._active is not None
        return self._active

    async def ensure_key(self) -> None:
        """Load the newest unretired key, creating one in an empty store."""
        async with self.database.transaction() as conn:
            rows = [r for r in await repo.published_keys(conn, now_ms()) if not r.retired_at]
            if rows:
                key = SigningKey.from_pem(rows[0].kid, rows[0].private_pem)
            else:
                key = await self._insert_key(conn)
        self._active, self._loaded_at = key, time.monotonic()

    async def _insert_key(self, conn: AsyncConnection) -> SigningKey:
        key = SigningKey.generate()
        await repo.insert_signing_key(
            conn,
            repo.StoredKey(
                kid=key.kid,
                private_pem=key.private_pem(),
                public_jwk=key.public_jwk(),
                created_at=now_ms(),
                retired_at=None,
            ),
        )
        return key

    async def rotate(self) -> None:
        """Sign with a new key from now on; the old ones stay published until their tokens
        expired, so no valid token fails."""
        async with self.database.transaction() as conn:
            key = await self._insert_key(conn)
            await repo.retire_signing_keys(conn, key.kid, now_ms())
        self._active, self._loaded_at = key, time.monotonic()

    async def jwks(self) -> tuple[dict[str, Any], str]:
        retired_after = now_ms() - self.ttl_seconds * 1000 - KEY_OVERLAP_MS
        async with self.database.read() as conn:
            rows = await repo.published_keys(conn, retired_after)
        keys = [r.public_jwk for r in rows]
        return {"keys": keys}, keys_version([r.kid for r in rows])

    async def access_token(
        self,
        *,
        user_id: str,
        role: str,
        session_id: str,
        scope: list[str] | None = None,
        api_token_id: str = "",
        csrf_hash: str = "",
    ) -> str:
        key = await self._active_key()
        issued = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "sid": session_id,
            "role": role,
        }
        if scope is not None:
            claims["scope"] = scope
        if api_token_id:
            claims["tid"] = api_token_id
        if csrf_hash:
            claims["csrf"] = csrf_hash
        return key.sign(claims)
