"""After-events as the plugins service receives them from the services' outboxes: each kept
once by its id (a relay may send a batch again), then handed to every active plugin's handler
of its event, in the order received, by one dispatcher at a time.

An after handler never fails the write it follows (that committed long ago): one that is slow
or raises is bounded by its deadline and counted (heron_plugins.runtime). An event whose
handlers were interrupted by a crash of this service is handled again after the restart: after
handlers see each event at least once (a batch is marked handled once all of it ran), and its
`id` lets them notice a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from heron_common.db import Database
from heron_common.ids import now_ms
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from heron_plugins.models import events
from heron_plugins.runtime import Runtime

logger = logging.getLogger("heron.plugins")

BATCH = 100
KEPT_MS = 7 * 24 * 3600 * 1000
"""How long a handled event's id is kept to recognise it if a relay sends it again."""
PRUNE_EVERY = 1000
DISPATCH_LOCK = 0x48455256  # one dispatcher at a time across replicas (PostgreSQL)


@dataclass(frozen=True)
class Incoming:
    id: str
    event: str
    subject: str
    payload: bytes
    occurred_at: int


class Inbox:
    def __init__(self, database: Database, runtime: Runtime, poll_seconds: float = 1.0) -> None:
        self.db = database
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._passes = 0

    async def accept(self, source: str, incoming: Sequence[Incoming]) -> int:
        """Keep the events not received before; how many were new."""
        fresh: dict[str, Incoming] = {}
        for event in incoming:
            fresh.setdefault(event.id, event)
        if not fresh:
            return 0
        now = now_ms()
        rows = [
            {
                "id": e.id,
                "event": e.event,
                "subject": e.subject,
                "source": source,
                "payload": e.payload.decode(),
                "occurred_at": e.occurred_at,
                "received_at": now,
            }
            for e in fresh.values()
        ]
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = insert(events).values(rows).on_conflict_do_nothing().returning(events.c.id)
        async with self.db.transaction() as conn:
            kept = len(list(await conn.execute(statement)))
        self._wake.set()
        return kept

    async def run(self) -> None:
        """Dispatch until cancelled; a failed pass is logged and the next one tries again."""
        while True:
            try:
                if await self.dispatch() == BATCH:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dispatching after-events failed")
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def dispatch(self) -> int:
        """Hand the oldest unhandled events to their handlers; how many were handled."""
        if self.db.dialect == "postgresql":
            async with self.db.transaction() as conn:
                if not await conn.scalar(select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))):
                    return 0
                return await self._dispatch(conn)
        async with self.db.read() as conn:
            return await self._dispatch(conn)

    async def _dispatch(self, conn: Any) -> int:
        query = (
            select(events.c.seq, events.c.event, events.c.payload)
            .where(events.c.handled_at.is_(None))
            .order_by(events.c.seq)
            .limit(BATCH)
        )
        pending = list(await conn.execute(query))
        for row in pending:
            await self.runtime.run_after(row.event, orjson.loads(row.payload))
        if pending:
            # Once per batch: a crash before this hands the batch to the handlers again.
            async with self.db.transaction() as marking:
                await marking.execute(
                    update(events)
                    .where(events.c.seq.in_([r.seq for r in pending]))
                    .values(handled_at=now_ms())
                )
        self._passes += 1
        if self._passes % PRUNE_EVERY == 1:
            async with self.db.transaction() as pruning:
                await pruning.execute(
                    delete(events).where(events.c.handled_at < now_ms() - KEPT_MS)
                )
        return len(pending)
