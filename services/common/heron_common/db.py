"""Async SQLAlchemy engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), one per service."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from heron_common.errors import InvalidArgument, Unavailable

logger = logging.getLogger("heron.db")


def normalize_url(url: str) -> str:
    """Pick the async driver for plain URLs (`postgresql://`, `sqlite://`)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


_ENGINE_OPTIONS: dict[str, Any] = {
    # JSON columns are encoded and decoded with orjson (several times faster than the stdlib).
    "json_serializer": _orjson_dumps,
    "json_deserializer": orjson.loads,
    # Statement parameters are content (and, later, credentials): never in logged errors.
    "hide_parameters": True,
}


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Build the engine; nothing connects until the first query."""
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **_ENGINE_OPTIONS)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers run beside the single writer; busy_timeout queues writers
            # instead of failing at once with "database is locked".
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        **_ENGINE_OPTIONS,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        pool_recycle=1800,
    )


class Database:
    """A service's database: read connections and transactions, with outages as `Unavailable`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Reads run in autocommit: no BEGIN before and no ROLLBACK after each checkout, which
        # on PostgreSQL are two of the three round trips of a single-row read.
        self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside BEGIN … COMMIT (rolled back on any exception)."""
        async with _outages_as_unavailable(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only, in autocommit: each statement sees committed data."""
        async with _outages_as_unavailable(), self._read_engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _outages_as_unavailable() -> AsyncIterator[None]:
    """Connection loss and lock timeouts are retryable outages; anything else is a bug."""
    try:
        yield
    except DataError as exc:  # a value the database cannot hold, e.g. out of a column's range
        raise InvalidArgument("A value in the request cannot be stored.") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            raise _unavailable(exc) from exc
        raise
    except (OSError, PoolTimeout) as exc:  # could not connect, or every connection is busy
        raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> Unavailable:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    logger.warning("database unavailable", extra={"error": type(cause).__name__})
    return Unavailable("The database is temporarily unavailable; retry shortly.")
