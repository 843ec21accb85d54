"""Every forged or stale access token is refused by the verifier every service and the gateway
use (heron_common.security.identity.Authenticator), fed by a real auth store (SQLite)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from heron_auth import repository as repo
from heron_auth import server as auth_server
from heron_auth.service import AuthService
from heron_auth.settings import AuthSettings
from heron_common.errors import Unauthenticated
from heron_common.security.identity import Authenticator

PASSWORD = "a-Password-123"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture
async def verifier(tmp_path: Path) -> AsyncIterator[tuple[AuthService, Authenticator]]:
    settings = AuthSettings(
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        redis_url="",
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
    )
    async with AsyncExitStack() as stack:
        service = await auth_server.open_service(settings, stack)
        authenticator = auth_server.build_authenticator(service, settings)
        await authenticator.sync()
        yield service, authenticator


async def _forgeries(service: AuthService, token: str) -> dict[str, str]:
    header_part, payload_part, signature = token.split(".")
    claims: dict[str, Any] = json.loads(unb64(payload_part))
    async with service.users.context.database.read() as conn:
        stored = (await repo.published_keys(conn, 0))[0]
    kid = stored.kid
    key = serialization.load_pem_private_key(stored.private_pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    public_x = stored.public_jwk["x"]
    now = int(time.time())
    stranger = Ed25519PrivateKey.generate()
    escalated = {**claims, "role": "admin", "sub": str(uuid.uuid4())}

    def signed(**changes: Any) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="EdDSA", headers={"kid": kid})

    return {
        "alg none": f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid}).encode())}."
        f"{b64(json.dumps(claims).encode())}.",
        "HS256 keyed with the public key": jwt.encode(
            claims, public_x.encode(), algorithm="HS256", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": "nope"}),
        "known kid, another key": jwt.encode(
            claims, stranger, algorithm="EdDSA", headers={"kid": kid}
        ),
        "no kid": jwt.encode(claims, key, algorithm="EdDSA"),
        "wrong iss": signed(iss="someone-else"),
        "wrong aud": signed(aud="another-api"),
        "expired": signed(iat=now - 3600, exp=now - 600),
        "tampered payload": f"{header_part}.{b64(json.dumps(escalated).encode())}.{signature}",
        "tampered signature": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "no sid": jwt.encode(
            {k: v for k, v in claims.items() if k != "sid"},
            key,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            key,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "garbage": "not.a.token",
        "two parts": "abc.def",
        "huge": "a" * 10_000 + ".b.c",
    }


async def test_forged_and_stale_tokens_are_refused(
    verifier: tuple[AuthService, Authenticator],
) -> None:
    service, authenticator = verifier
    await service.users.add_first_admin("root@example.com", PASSWORD)
    issued = await service.sessions.login("root@example.com", PASSWORD, "192.0.2.1")
    principal = await authenticator.verify(issued.access_token)
    assert principal.user_id == issued.user.id and principal.role == "admin"
    accepted = []
    for name, forged in (await _forgeries(service, issued.access_token)).items():
        try:
            await authenticator.verify(forged)
            accepted.append(name)
        except Unauthenticated:
            pass
    assert accepted == []


async def test_a_signed_out_session_is_refused_once_the_verifier_synced(
    verifier: tuple[AuthService, Authenticator],
) -> None:
    service, authenticator = verifier
    await service.users.add_first_admin("root@example.com", PASSWORD)
    issued = await service.sessions.login("root@example.com", PASSWORD, "192.0.2.1")
    principal = await authenticator.verify(issued.access_token)
    await service.sessions.logout(principal, "")
    await authenticator.sync()
    with pytest.raises(Unauthenticated, match="ended"):
        await authenticator.verify(issued.access_token)
