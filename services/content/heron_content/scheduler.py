"""The scheduler: makes items' scheduled publishing and unpublishing happen, exactly once.

Every content-service process runs one. Each tick (every `interval` seconds) it takes, in one
transaction, the items whose scheduled change is due, locked with `FOR UPDATE SKIP LOCKED`:
two processes on one PostgreSQL never take the same item, and the change clears the schedule
in the same transaction that applies it, so it can never run twice. (On SQLite one process
writes at a time; one scheduler is enough.) A change runs with the permissions the role that
scheduled it has at that moment: if that role may no longer publish, the change does not
happen and the item says why. Any other failure is retried with a growing delay, up to
`MAX_ATTEMPTS`, its message on the item meanwhile. Each change is a new version and a
revision (by whoever scheduled it), and invalidates caches like any other write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from heron_common.cache.tags import media_tags
from heron_common.events import UnitOfWork, unit_of_work
from heron_common.ids import now_ms

from heron_content import policy
from heron_content import repository as repo
from heron_content.caching import item_tags
from heron_content.outbox import emit_item_events
from heron_content.repository import Item
from heron_content.service import ContentService

logger = logging.getLogger("heron.content.scheduler")

MAX_ATTEMPTS = 8
BATCH = 50
MAX_RETRY_DELAY_MS = 300_000


class Scheduler:
    def __init__(
        self,
        service: ContentService,
        role_permissions: Callable[[], Mapping[str, frozenset[str]]],
        interval: float = 0.5,
        batch: int = BATCH,
    ) -> None:
        self.service = service
        self.role_permissions = role_permissions
        self.interval = interval
        self.batch = batch

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged and the next one tries again."""
        while True:
            try:
                while await self.tick() == self.batch:
                    pass  # a full batch: more may be due right now
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduler tick failed")
            await asyncio.sleep(self.interval)

    async def tick(self) -> int:
        """Apply the due changes; how many items were taken."""
        now = now_ms()
        items = self.service.items
        async with unit_of_work(items.db, items.events, items.outbox) as work:
            due = await repo.due_items(work.conn, now, self.batch, MAX_ATTEMPTS)
            for item in due:
                try:
                    async with work.conn.begin_nested():
                        await self._apply(work, item, now)
                except _Changed:
                    continue  # written meanwhile (SQLite takes no lock): the next tick sees it
                except Exception as exc:  # this item only: the others still go
                    logger.warning(
                        "scheduled change failed",
                        extra={"item_id": item.id, "error": type(exc).__name__},
                    )
                    await _failed(work.conn, item, now, f"the scheduled change failed ({exc})")
                used = media_tags(await repo.media_of(work.conn, item.id))
                work.record("item.updated", item.id, [*item_tags(item), *used])
            upcoming = await repo.next_due(work.conn, MAX_ATTEMPTS)
        # Past due but not taken (retrying, or locked by the other scheduler): soon.
        self.service.cache.upcoming.moment = (
            None if upcoming is None else max(upcoming, now + int(self.interval * 1000))
        )
        return len(due)

    async def _apply(self, work: UnitOfWork, item: Item, now: int) -> None:
        conn = work.conn
        permissions = self.role_permissions().get(item.scheduled_role, frozenset())
        if not policy.may_still_publish(item, permissions):
            message = (
                f"not applied: the role {item.scheduled_role!r} that scheduled it may no longer "
                "publish; schedule it again"
            )
            await repo.update_item(
                conn,
                item.id,
                {"schedule_error": message, "schedule_attempts": MAX_ATTEMPTS},
                None,
            )
            return
        current = item
        publish = item.publish_at is not None and item.publish_at <= now
        unpublish = item.unpublish_at is not None and item.unpublish_at <= now
        for due, status, cleared in (
            (publish, "published", "publish_at"),
            (unpublish, "draft", "unpublish_at"),
        ):
            if not due:
                continue
            values: dict[str, Any] = {
                cleared: None,
                "schedule_error": "",
                "schedule_attempts": 0,
                "schedule_retry_at": None,
            }
            if current.status != status:
                values["status"] = status
                if status == "published" and current.published_at is None:
                    values["published_at"] = now
            values["version"] = current.version + 1
            values["updated_at"] = now
            if not await repo.update_item(conn, item.id, values, current.version):
                raise _Changed()
            current = repo.changed(current, values)
            await repo.insert_revision(
                conn,
                repo.revision_of(current, "updated", item.scheduled_by),
                orjson.loads(current.data),
                self.service.items.revisions_kept,
            )
        # Who scheduled it is who changed it.
        actor = {"id": item.scheduled_by, "role": item.scheduled_role}
        await emit_item_events(work, actor, item, current)
        logger.info(
            "scheduled change applied",
            extra={"item_id": item.id, "status": current.status},
        )


class _Changed(Exception):
    """The item changed between the scheduler's read and its write."""


async def _failed(conn: Any, item: Item, now: int, message: str) -> None:
    """Record a failed try: the message on the item, and when to try again."""
    attempts = item.schedule_attempts + 1
    delay = min(1000 * 2**attempts, MAX_RETRY_DELAY_MS)
    await repo.update_item(
        conn,
        item.id,
        {
            "schedule_error": message[:500],
            "schedule_attempts": attempts,
            "schedule_retry_at": now + delay,
        },
        None,
    )
