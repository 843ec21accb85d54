"""Throwaway PostgreSQL databases for production mode, and a Redis reachability check."""

from __future__ import annotations

import asyncio
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from bench.errors import BenchError


def with_database(admin_url: str, name: str) -> str:
    """`admin_url` pointing at database `name` instead."""
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _execute(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str, service: str) -> str:
    """Create `heron_bench_<random>_<service>` and return its name."""
    name = f"heron_bench_{secrets.token_hex(4)}_{service}"
    try:
        asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"cannot create a PostgreSQL database through {admin_url} ({exc}); start "
            "PostgreSQL, pass --pg-admin-url, or run with --embedded"
        ) from exc
    return name


def drop_database(admin_url: str, name: str) -> None:
    # FORCE (PostgreSQL 13+) ends connections a killed service may have left behind.
    asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def analyze(url: str) -> None:
    """Fresh planner statistics, as autovacuum would have them in a steady state.

    Without this, whether autovacuum got to the seeded tables before the first scenario
    decides the query plans, and so the figures.
    """
    asyncio.run(_execute(url, "ANALYZE"))


def redis_reachable(url: str) -> bool:
    """True when a Redis server answers PING at `url` (host and port only)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete every key of one run (named `<prefix>…`), if Redis is there at all."""
    if not redis_reachable(url):
        return
    import redis  # only production mode gets here

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()
