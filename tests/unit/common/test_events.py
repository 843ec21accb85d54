"""The unit of work publishes a write's events only after it committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from heron_common.db import Database, create_engine
from heron_common.events import Event, EventBus, unit_of_work
from sqlalchemy import text


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(create_engine(f"sqlite:///{tmp_path / 'events.db'}"))
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE things (id TEXT PRIMARY KEY)"))
    yield db
    await db.dispose()


async def _count(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM things"))).scalar_one())


async def test_events_reach_subscribers_after_the_commit_only(database: Database) -> None:
    bus = EventBus()
    seen: list[tuple[list[str], int]] = []

    async def subscriber(events: Sequence[Event]) -> None:
        # What the subscriber reads is already committed.
        seen.append(([e.name for e in events], await _count(database)))

    bus.subscribe(subscriber)
    async with unit_of_work(database, bus) as work:
        await work.conn.execute(text("INSERT INTO things VALUES ('a')"))
        work.record("thing.created", "a", ["thing:a", "things"])
        work.record("thing.counted", "a")
        assert seen == []  # nothing before the commit
    assert seen == [(["thing.created", "thing.counted"], 1)]

    with pytest.raises(RuntimeError):
        async with unit_of_work(database, bus) as work:
            await work.conn.execute(text("INSERT INTO things VALUES ('b')"))
            work.record("thing.created", "b")
            raise RuntimeError("the write fails")
    assert len(seen) == 1 and await _count(database) == 1  # rolled back, nothing published

    async with unit_of_work(database, bus):
        pass  # nothing recorded: nobody is called
    assert len(seen) == 1


async def test_a_failing_subscriber_neither_fails_the_write_nor_stops_the_others(
    database: Database,
) -> None:
    bus = EventBus()
    later: list[Event] = []

    async def broken(events: Sequence[Event]) -> None:
        raise ValueError("subscriber bug")

    async def fine(events: Sequence[Event]) -> None:
        later.extend(events)

    bus.subscribe(broken)
    bus.subscribe(fine)
    async with unit_of_work(database, bus) as work:
        await work.conn.execute(text("INSERT INTO things VALUES ('c')"))
        work.record("thing.created", "c", ["thing:c"])
    assert await _count(database) == 1
    assert later == [Event("thing.created", "c", ("thing:c",))]
