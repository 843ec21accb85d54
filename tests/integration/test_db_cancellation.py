"""Calls cancelled mid-flight (a gRPC caller going away) give their pooled connection back.

Each scenario runs on its own event loop, once on asyncio's and once on uvloop (what the services
run on): the windows a cancellation can land in differ between the two.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop
from heron_common.db import Database, create_engine
from sqlalchemy import text

POOL_SIZE = 4
ROUNDS = 40
CALLS_PER_ROUND = 24

LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def pool_log() -> Iterator[_Records]:
    """What SQLAlchemy's pool logs: a connection found by the GC is logged there as an error."""
    handler = _Records()
    logger = logging.getLogger("sqlalchemy.pool")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def _read(database: Database) -> None:
    async with database.read() as conn:
        await conn.execute(text("SELECT 1"))
        await conn.execute(text("SELECT count(*) FROM calls"))


async def _write(database: Database, n: int) -> None:
    async with database.transaction() as conn:
        await conn.execute(text("INSERT INTO calls (n) VALUES (:n)"), {"n": n})
        await conn.execute(text("SELECT count(*) FROM calls"))


async def _cancel_storm(url: str, seed: int) -> None:
    """Reads and transactions cancelled at random points: before checkout, during it, during
    a statement, during commit and during the close; then the pool must be whole."""
    rnd = random.Random(seed)
    database = Database(create_engine(url, pool_size=POOL_SIZE))
    try:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE calls (n integer NOT NULL)"))
        completed_writes = 0
        for round_no in range(ROUNDS):
            calls = [
                asyncio.create_task(
                    _read(database) if i % 2 else _write(database, round_no * 1000 + i)
                )
                for i in range(CALLS_PER_ROUND)
            ]
            # Each call is cancelled once, as grpc.aio cancels a handler whose caller went
            # away, after a random number of loop turns (a thread hop of aiosqlite or a
            # round trip of asyncpg is several turns), or a random short time.
            due = {call: rnd.randrange(60) for call in calls if rnd.random() < 0.8}
            for turn in range(60):
                for call, at in due.items():
                    if at == turn:
                        call.cancel()
                await (asyncio.sleep(0) if rnd.random() < 0.9 else asyncio.sleep(0.0005))
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, asyncio.CancelledError
                ):
                    raise outcome
            completed_writes += sum(
                1 for i, call in enumerate(calls) if not i % 2 and not call.cancelled()
            )
        gc.collect()
        pool: Any = database.engine.pool
        assert pool.checkedout() == 0, pool.status()
        # The database still serves, with every connection of the pool at once.
        await asyncio.wait_for(
            asyncio.gather(*(_read(database) for _ in range(POOL_SIZE * 2))), timeout=10
        )
        async with database.read() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one()
        assert stored >= completed_writes
        assert pool.checkedout() == 0, pool.status()
    finally:
        await database.dispose()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_cancelled_calls_return_their_connections(
    database_url: str, loop: str, pool_log: _Records
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LOOPS[loop](_cancel_storm(database_url, seed=17))
        gc.collect()
    leaks = [str(w.message) for w in caught if "non-checked-in" in str(w.message)]
    assert not leaks, f"{len(leaks)} connections left to the garbage collector: {leaks[0]}"
    assert not [w for w in caught], [str(w.message) for w in caught]
    errors = [r.getMessage() for r in pool_log.records if r.levelno >= logging.ERROR]
    assert not errors, errors
