"""Async SQLAlchemy engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), one per service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy.ext.asyncio as sa_asyncio
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
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


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# SQLite's lower() folds ASCII only; PostgreSQL's every script: the same here.
_SQLITE_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {"lower": (1, _lower)}


def sqlite_function(name: str, arity: int, function: Callable[..., Any]) -> None:
    """Make a deterministic Python function callable from SQL on every SQLite connection
    opened from now on (a service registers its own when its module is imported)."""
    _SQLITE_FUNCTIONS[name] = (arity, function)


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
        engine = sa_asyncio.create_async_engine(
            url, connect_args={"timeout": 15}, **_ENGINE_OPTIONS
        )

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
            for name, (arity, function) in _SQLITE_FUNCTIONS.items():
                dbapi_connection.create_function(name, arity, function, deterministic=True)

        @event.listens_for(engine.sync_engine, "handle_error")
        def _cancelled_is_not_a_disconnect(context: ExceptionContext) -> None:
            # SQLAlchemy invalidates a connection whose statement was cancelled, closing it with
            # that statement's cursor still open: SQLite then keeps the connection (and the write
            # lock of its transaction) alive until the garbage collector finds the cursor, and
            # every other writer fails with "database is locked". An aiosqlite connection is
            # sound after a cancelled await (the statement finishes on its thread, the next call
            # queues behind it), so it is kept: the cursor is closed and the transaction rolled
            # back as after any other error.
            if isinstance(context.original_exception, asyncio.CancelledError):
                context.is_disconnect = False

        return engine
    return sa_asyncio.create_async_engine(
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
        async with _outages_as_unavailable(), _checked_out(self.engine) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only, in autocommit: each statement sees committed data."""
        async with _outages_as_unavailable(), _checked_out(self._read_engine) as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _checked_out(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection that goes back to the pool even if the caller is cancelled meanwhile.

    grpc.aio cancels a handler whose caller went away, wherever it is. SQLAlchemy shields the
    close, but not the checkout: a cancellation landing after the pool handed a connection out
    and before `AsyncConnection.start()` returns (on SQLite, while the read engine sets
    AUTOCOMMIT, a hop to aiosqlite's thread) drops the only reference to it, and the pool only
    gets it back from the garbage collector ("non-checked-in connection"), much later.
    """
    conn = engine.connect()
    checkout = asyncio.ensure_future(conn.start())
    try:
        await asyncio.shield(checkout)
    except asyncio.CancelledError:
        # Let the checkout finish, then give its connection straight back.
        await _to_completion(_close_after(checkout, conn))
        raise
    try:
        yield conn
    finally:
        await _to_completion(conn.close())


async def _close_after(checkout: asyncio.Future[AsyncConnection], conn: AsyncConnection) -> None:
    try:
        await checkout
    except BaseException:  # the checkout failed: the pool took its connection back itself
        return
    await conn.close()


async def _to_completion(cleanup: Awaitable[None]) -> None:
    """Await `cleanup` to its end; a cancellation of the caller meanwhile is re-raised after."""
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    task.result()


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
