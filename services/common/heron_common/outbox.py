"""The transactional outbox: after-events written in the same transaction as the change they
describe, and the relay that delivers them to the plugins service.

A write that an active plugin listens to (`content:afterCreate`, `media:afterUpload`, …) adds
its event to the service's `outbox` table inside its own transaction (`UnitOfWork.emit`). So an
event exists exactly when its change committed: a write that rolled back leaves none, and one
that committed keeps it through a crash of the process right after. The `Relay` sends what the
table holds to the plugins service (`DeliverEvents`) in the order it was written, and deletes
what was accepted; the plugins service keeps each event id once, so a batch sent twice (a
crash between its delivery and its delete, two replicas) is delivered once.

Order per subject (an item, a file, a user): two writes of the same subject hold its row lock
in turn, so the second's event is numbered after the first's commit, and the relay only ever
deletes what it delivered: a later event of a subject is never delivered before an earlier one.
On PostgreSQL one replica relays at a time (an advisory lock), so replicas keep that order too.

With no active plugin listening to an event, a write adds nothing and pays nothing for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_common.context import request_id_var
from heron_common.db import Database
from heron_common.errors import DomainError
from heron_common.ids import new_id, now_ms
from heron_common.rpc.client import call

if TYPE_CHECKING:
    from cms.plugins.v1 import plugins_pb2_grpc

    from heron_common.plugin_hooks import PluginHooks
    from heron_common.security.permissions import Principal

logger = logging.getLogger("heron.outbox")

OUTBOX = "outbox"
BATCH = 200
MAX_BACKOFF_SECONDS = 10.0
LINGER_SECONDS = 0.05
"""After a commit wakes the relay, how long it waits for more to send them together: under a
stream of writes, one delivery carries several events instead of one each."""


def outbox_columns() -> list[Column[Any]]:
    """The outbox table's columns (for a service's models and its migration alike)."""
    return [
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("id", String(36), nullable=False, unique=True),
        Column("event", String(64), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", BigInteger, nullable=False),
    ]


def outbox_table(metadata: MetaData) -> Table:
    return Table(OUTBOX, metadata, *outbox_columns())


def actor_of(principal: Principal | None) -> dict[str, str]:
    """Who made a change, as an event names them (the service itself: role `service`)."""
    if principal is None:
        return {"id": "", "role": "service"}
    return {"id": principal.user_id, "role": principal.role}


@dataclass
class Outbox:
    """A service's outbox: which events to keep (those an active plugin listens to) and the
    relay to wake once a transaction that added some committed."""

    table: Table
    source: str
    """The service the events come from (`content`, `media`, `auth`)."""
    hooks: PluginHooks | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: str) -> bool:
        return self.hooks is not None and self.hooks.handles(event)

    async def add(
        self,
        conn: AsyncConnection,
        event: str,
        subject: str,
        body: Callable[[], dict[str, Any]],
    ) -> bool:
        """Add the event (its payload made by `body` only when kept) in `conn`'s transaction;
        whether it was kept."""
        if not self.wants(event):
            return False
        event_id = new_id()
        at = now_ms()
        payload = {
            "id": event_id,
            "event": event,
            "source": self.source,
            "occurred_at": at,
            "request_id": request_id_var.get(),
            **body(),
        }
        await conn.execute(
            self.table.insert().values(
                id=event_id,
                event=event,
                subject=subject,
                payload=orjson.dumps(payload).decode(),
                created_at=at,
            )
        )
        return True

    def committed(self) -> None:
        """A transaction that added events committed: relay them now."""
        self._wake.set()

    async def wait(self, seconds: float) -> bool:
        """Until a commit added events (True) or `seconds` passed (False)."""
        woken = True
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            woken = False
        self._wake.clear()
        return woken


def relay_lock_id(source: str) -> int:
    digest = hashlib.blake2b(f"heron-outbox:{source}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


class Relay:
    """Delivers the outbox to the plugins service: at once after a commit that added events,
    and every `poll_seconds` (what a crashed process or another replica left); with growing
    pauses while the plugins service is unreachable (the events wait in the table)."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        stub: plugins_pb2_grpc.PluginsServiceAsyncStub,
        metadata: tuple[tuple[str, str], ...],
        *,
        poll_seconds: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self.db = database
        self.outbox = outbox
        self.stub = stub
        self.metadata = metadata
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self._failing = False
        self.oldest_ms: int | None = None
        """When the oldest event waiting was written, as of the relay's last look (None:
        nothing waits, or another replica relays)."""
        self.delivered = 0

    async def run(self) -> None:
        backoff = self.poll_seconds
        while True:
            try:
                sent = await self.deliver()
                if self._failing:
                    logger.info("outbox delivering again", extra={"source": self.outbox.source})
                self._failing = False
                backoff = self.poll_seconds
                if sent == BATCH:
                    continue  # more may be waiting
                if await self.outbox.wait(self.poll_seconds):
                    await asyncio.sleep(LINGER_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the plugins service or the store is away: events wait
                if not self._failing:
                    logger.warning(
                        "cannot deliver the outbox; its events wait",
                        extra={"source": self.outbox.source, "error": _reason(exc)},
                    )
                self._failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def deliver(self) -> int:
        """Send one batch of the oldest events; how many were sent."""
        if self.db.dialect == "postgresql":
            async with self.db.transaction() as conn:
                lock = func.pg_try_advisory_xact_lock(relay_lock_id(self.outbox.source))
                if not await conn.scalar(select(lock)):
                    self.oldest_ms = None
                    return 0  # another replica is relaying
                rows = await self._oldest(conn)
                if rows:
                    await self._send(rows)
                    await self._forget(conn, rows)
        else:
            # SQLite has one writer: no transaction is held while the plugins service answers.
            async with self.db.read() as conn:
                rows = await self._oldest(conn)
            if rows:
                await self._send(rows)
                async with self.db.transaction() as conn:
                    await self._forget(conn, rows)
        self.delivered += len(rows)
        if len(rows) < BATCH:
            self.oldest_ms = None  # all of it went (what came since, the next look sees)
        return len(rows)

    async def _oldest(self, conn: AsyncConnection) -> list[Any]:
        table = self.outbox.table
        query = select(table).order_by(table.c.seq).limit(BATCH)
        rows = list(await conn.execute(query))
        self.oldest_ms = rows[0].created_at if rows else None
        return rows

    async def _send(self, rows: list[Any]) -> None:
        from cms.plugins.v1 import plugins_pb2 as pb

        request = pb.DeliverEventsRequest(
            source=self.outbox.source,
            events=[
                pb.OutboxEvent(
                    id=r.id,
                    event=r.event,
                    subject=r.subject,
                    payload_json=r.payload.encode(),
                    occurred_at=r.created_at,
                )
                for r in rows
            ],
        )
        await call(self.stub.DeliverEvents, request, timeout=self.timeout, metadata=self.metadata)

    async def _forget(self, conn: AsyncConnection, rows: list[Any]) -> None:
        table = self.outbox.table
        await conn.execute(delete(table).where(table.c.seq.in_([r.seq for r in rows])))


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DomainError) else type(exc).__name__


class OutboxCollector(Collector):
    """The relays' lag (`heron_outbox_lag_seconds`: how long the oldest event waiting has
    waited; 0 when none waits) and deliveries (`heron_outbox_delivered_total`), by source."""

    def __init__(self) -> None:
        self.relays: list[Relay] = []

    def collect(self) -> Any:
        lag = GaugeMetricFamily(
            "heron_outbox_lag_seconds",
            "Age of the oldest after-event waiting in the outbox, as of the relay's last look",
            labels=["source"],
        )
        delivered = CounterMetricFamily(
            "heron_outbox_delivered",
            "After-events the relay delivered to the plugins service",
            labels=["source"],
        )
        now = now_ms()
        for relay in self.relays:
            oldest = relay.oldest_ms
            lag.add_metric(
                [relay.outbox.source], 0.0 if oldest is None else max(0, now - oldest) / 1000
            )
            delivered.add_metric([relay.outbox.source], relay.delivered)
        yield lag
        yield delivered


OUTBOX_METRICS = OutboxCollector()
REGISTRY.register(OUTBOX_METRICS)
