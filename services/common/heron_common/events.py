"""Domain events and the unit of work that publishes them only after its commit.

A write runs in a `unit_of_work`: a transaction that collects what happened (`item.created`,
`collection.updated`, …) and, once it has committed, hands the events to every subscriber of
the service's `EventBus` (the cache invalidation), and wakes the relay of the service's outbox
(heron_common.outbox), whose after-events the write added in its own transaction (`emit`). A
write that rolls back publishes nothing; a subscriber that fails is logged and never undoes or
fails the write that already committed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from heron_common.db import Database

if TYPE_CHECKING:
    from heron_common.outbox import Outbox

logger = logging.getLogger("heron.events")


@dataclass(frozen=True)
class Event:
    name: str
    """`<aggregate>.<what happened>`, e.g. `item.updated`."""
    subject: str
    """The id of what it happened to."""
    tags: tuple[str, ...] = ()
    """The cache tags of every answer the change made stale."""


Subscriber = Callable[[Sequence[Event]], Awaitable[None]]


class EventBus:
    """Committed events → every subscriber, in the order they subscribed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, events: Sequence[Event]) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(events)
            except Exception:
                logger.exception(
                    "an event subscriber failed", extra={"events": [e.name for e in events]}
                )


@dataclass
class UnitOfWork:
    conn: AsyncConnection
    events: list[Event] = field(default_factory=list)
    outbox: Outbox | None = None
    emitted: int = 0

    def record(self, name: str, subject: str, tags: Iterable[str] = ()) -> None:
        """Note what this write did; published only if the transaction commits."""
        self.events.append(Event(name, subject, tuple(tags)))

    def wants(self, event: str) -> bool:
        """Whether an active plugin listens to the after-event `event`."""
        return self.outbox is not None and self.outbox.wants(event)

    async def emit(self, event: str, subject: str, body: Callable[[], dict[str, Any]]) -> None:
        """Add the after-event `event` of `subject` to the outbox, in this transaction (when an
        active plugin listens to it; `body` makes its payload only then)."""
        if self.outbox is not None and await self.outbox.add(self.conn, event, subject, body):
            self.emitted += 1


@asynccontextmanager
async def unit_of_work(
    database: Database, bus: EventBus, outbox: Outbox | None = None
) -> AsyncIterator[UnitOfWork]:
    """A transaction whose recorded events reach `bus` after it committed (and whose emitted
    after-events are relayed from then on)."""
    async with database.transaction() as conn:
        work = UnitOfWork(conn, outbox=outbox)
        yield work
    if work.emitted and outbox is not None:
        outbox.committed()
    if work.events:
        await bus.publish(work.events)
