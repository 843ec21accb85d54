"""Helpers for the auth e2e tests: forging tokens, reading the auth store, waiting for bounds."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from heron_common.db import Database, create_engine
from sqlalchemy import text

from tests.e2e.conftest import Stack


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), signature


def auth_rows(stack: Stack, query: str) -> list[dict[str, Any]]:
    """Rows of the auth service's own database, read as an operator would."""
    url = stack.auth.env.get("HERON_AUTH_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{stack.auth.log_path.parent / 'auth.db'}"
    )

    async def read() -> list[dict[str, Any]]:
        database = Database(create_engine(url))
        try:
            async with database.read() as conn:
                return [dict(r) for r in (await conn.execute(text(query))).mappings()]
        finally:
            await database.dispose()

    return asyncio.run(read())


def seconds_until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """How long until `check()` holds (polling), or fail after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"did not happen within {timeout}s")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def status_with(stack: Stack, token: str, path: str = "/auth/me") -> int:
    return httpx.get(f"{stack.base_url}{path}", headers=bearer(token), timeout=5).status_code
