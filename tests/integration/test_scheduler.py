"""The scheduler against a real database: a change that fails is retried later, its failure
on the item meanwhile, and succeeds once the cause is gone. The failure is the database's own
(a trigger refusing the write), not a stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from heron_common.db import Database, create_engine
from heron_common.ids import now_ms
from heron_common.rpc.paging import Page
from heron_common.security.permissions import Principal
from heron_common.service import migrate
from heron_content.scheduler import Scheduler
from heron_content.server import SPEC
from heron_content.service import ContentService
from sqlalchemy import text

EDITOR = Principal(
    "editor-1", "editor", frozenset({"content.read", "content.update", "content.publish"})
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'content.db'}"))
    await migrate(SPEC, db)
    yield db
    await db.dispose()


async def test_a_failed_change_is_retried_and_visible_meanwhile(database: Database) -> None:
    service = ContentService(database)
    await service.collections.create(
        name="notes", display_name="Notes", description="", schema=None
    )
    item = await service.items.create(EDITOR, collection="notes", title="Soon", data={})
    await service.items.schedule(EDITOR, item.id, publish_at=now_ms() + 50)
    async with database.transaction() as conn:  # the database refuses status changes
        await conn.execute(text("CREATE TABLE refuse (x INTEGER)"))
        await conn.execute(text("INSERT INTO refuse VALUES (1)"))
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_status BEFORE UPDATE OF status ON items "
                "WHEN (SELECT count(*) FROM refuse) > 0 "
                "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
            )
        )
    scheduler = Scheduler(service, lambda: {"editor": EDITOR.permissions}, interval=0.01)
    await asyncio.sleep(0.1)

    assert await scheduler.tick() == 1
    failed = await service.items.get(EDITOR, item.id)
    assert failed.status == "draft" and "the disk is full" in failed.schedule_error
    assert failed.schedule_attempts == 1 and failed.schedule_retry_at is not None
    assert failed.schedule_retry_at > now_ms()  # not at once: later
    assert await scheduler.tick() == 0  # waiting for its retry

    async with database.transaction() as conn:  # the cause goes; the retry comes due
        await conn.execute(text("DELETE FROM refuse"))
        await conn.execute(text("UPDATE items SET schedule_retry_at = 0"))
    assert await scheduler.tick() == 1
    done = await service.items.get(EDITOR, item.id)
    assert done.status == "published" and done.publish_at is None
    assert done.schedule_error == "" and done.schedule_attempts == 0
    assert await scheduler.tick() == 0  # exactly once
    revisions, _ = await service.items.revisions(EDITOR, item.id, Page(20))
    assert [r.status for r in revisions].count("published") == 1
