"""Shared fixtures: finding PostgreSQL and Redis, throwaway databases, free ports.

A backing server is taken from the environment first (HERON_TEST_POSTGRES_URL,
HERON_TEST_REDIS_URL), then from the local default port, then from testcontainers when a
Docker engine is reachable. Under CI (CI=true) a missing server fails the run instead of
skipping tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, and one this test process has not handed out before: the
    kernel may offer a port again once its probe socket is closed, before the process it was
    meant for has bound it (a stack's gateway and one of its services were once given one)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _docker_reachable() -> bool:
    return os.path.exists("/var/run/docker.sock") or bool(os.environ.get("DOCKER_HOST"))


def _missing(what: str) -> None:
    message = f"{what} is required but none was found (set the URL in the environment)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _find_server(
    what: str,
    env_var: str,
    local_port: int,
    local_url: str,
    container: Callable[[], AbstractContextManager[str]],
) -> Iterator[str]:
    """The URL from the environment, else the local server, else a testcontainer."""
    url = os.environ.get(env_var)
    if url:
        yield url
        return
    if tcp_open("127.0.0.1", local_port):
        yield local_url
        return
    if _docker_reachable():
        try:
            with container() as container_url:
                yield container_url
            return
        except ImportError:  # testcontainers is optional
            pass
    _missing(what)


@contextmanager
def _postgres_container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextmanager
def _redis_container() -> Iterator[str]:
    from testcontainers.redis import RedisContainer  # type: ignore[import-not-found]

    with RedisContainer("redis:7-alpine") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server (maintenance database), however it was found."""
    yield from _find_server(
        "PostgreSQL",
        "HERON_TEST_POSTGRES_URL",
        5432,
        "postgresql://postgres@127.0.0.1:5432/postgres",
        _postgres_container,
    )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A URL of a Redis server, however it was found."""
    yield from _find_server(
        "Redis", "HERON_TEST_REDIS_URL", 6379, "redis://127.0.0.1:6379/0", _redis_container
    )


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it (even if clients remain)."""
    from sqlalchemy.engine import make_url

    name = f"heron_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A throwaway database for this test session."""
    with throwaway_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A throwaway database for one test."""
    with throwaway_database(postgres_server_url) as url:
        yield url


# The longest-running files start first, so that when the suite runs on several processes
# (pytest-xdist, a file per process) none of them is left for last. `make test` passes
# `--no-loadscope-reorder`: xdist would otherwise hand out the files with the most tests first,
# and the longest file (schemathesis: one test of four minutes) would start last.
LONGEST_FIRST = (
    "test_schemathesis.py",
    "test_cache.py",
    "test_query_differential.py",
    "test_media.py",
    "test_passwordless.py",
    "test_rolling_restart.py",
    "test_collections_as_code.py",
    "test_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
