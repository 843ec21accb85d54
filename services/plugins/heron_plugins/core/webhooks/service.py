"""Webhook endpoints and their durable delivery queue, in the plugins service's database.

An after-event reaches every enabled endpoint that listens to it (and, with a collection
filter, only for those collections) as one delivery: queued in the same statement for all of
them, once per endpoint and event id. A sender (heron_plugins.core.webhooks.sender) posts each
endpoint's deliveries in the order the events came.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from heron_common.db import Database
from heron_common.ids import new_id, now_ms
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from heron_plugins.core.webhooks import guard
from heron_plugins.core.webhooks.models import attempts, deliveries, endpoints
from heron_plugins.manifest import EVENTS, PluginContext

AFTER_EVENTS = tuple(e for e in EVENTS if ":after" in e)
MAX_ENDPOINTS = 100
SNIPPET = 500
DEFAULTS: dict[str, Any] = {
    "retry_base_seconds": 5.0,
    "retry_max_seconds": 3600.0,
    "max_attempts": 12,
    "disable_after_failures": 50,
    "timeout_seconds": 10.0,
}


class Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: list[str]
    collections: list[str]
    description: str
    secret: str
    enabled: bool
    disabled_reason: str
    failures_in_a_row: int
    owner: str
    created_at: int
    updated_at: int

    def shown(self) -> dict[str, Any]:
        """As a read returns it: without its secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "collections": self.collections,
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "failures_in_a_row": self.failures_in_a_row,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def wants(self, event: str, payload: dict[str, Any]) -> bool:
        if not self.enabled or ("*" not in self.events and event not in self.events):
            return False
        if not self.collections:
            return True
        item = payload.get("item") or payload.get("collection") or {}
        name = item.get("collection") if "item" in payload else item.get("name")
        return name in self.collections


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row.id,
        row.url,
        list(row.events),
        list(row.collections),
        row.description,
        row.secret,
        bool(row.enabled),
        row.disabled_reason,
        row.failures_in_a_row,
        row.owner,
        row.created_at,
        row.updated_at,
    )


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise Invalid("events", 'a non-empty list of event names (or ["*"] for all)')
    unknown = sorted(set(value) - {*AFTER_EVENTS, "*"})
    if unknown:
        raise Invalid("events", f"unknown: {', '.join(unknown)}; known: {', '.join(AFTER_EVENTS)}")
    return sorted(set(value))


def _collections(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise Invalid("collections", "a list of collection names")
    return sorted(set(value))[:100]


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 500:
        raise Invalid("description", "text of at most 500 characters")
    return value


class Webhooks:
    def __init__(self, context: PluginContext, allowed: guard.Allowed) -> None:
        self.context = context
        self.db: Database = context.database
        self.allowed = allowed
        self.wake = asyncio.Event()
        self._endpoints: tuple[float, list[Endpoint]] | None = None

    # -- endpoints -----------------------------------------------------------------------------
    async def _check_url(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise Invalid("url", "the URL to post events to")
        try:
            await guard.check(value, self.allowed)
        except guard.Refused as exc:
            raise Invalid("url", str(exc)) from None
        return value

    async def create(self, owner: str, body: Any) -> Endpoint:
        if not isinstance(body, dict):
            raise Invalid("body", "a JSON object")
        url = await self._check_url(body.get("url"))
        now = now_ms()
        made = Endpoint(
            new_id(),
            url,
            _events(body.get("events")),
            _collections(body.get("collections")),
            _description(body.get("description")),
            new_secret(),
            True,
            "",
            0,
            owner,
            now,
            now,
        )
        async with self.db.transaction() as conn:
            count = len(list(await conn.execute(select(endpoints.c.id))))
            if count >= MAX_ENDPOINTS:
                raise Invalid("url", f"at most {MAX_ENDPOINTS} endpoints")
            await conn.execute(endpoints.insert().values(**made.__dict__))
        self._endpoints = None
        return made

    async def all(self) -> list[Endpoint]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(endpoints).order_by(endpoints.c.created_at))
            return [_endpoint(r) for r in rows]

    async def get(self, endpoint_id: str) -> Endpoint | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id))
            ).first()
        return None if row is None else _endpoint(row)

    async def change(self, endpoint_id: str, body: Any) -> Endpoint | None:
        if not isinstance(body, dict):
            raise Invalid("body", "a JSON object")
        values: dict[str, Any] = {}
        if "url" in body:
            values["url"] = await self._check_url(body["url"])
        if "events" in body:
            values["events"] = _events(body["events"])
        if "collections" in body:
            values["collections"] = _collections(body["collections"])
        if "description" in body:
            values["description"] = _description(body["description"])
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise Invalid("enabled", "true or false")
            values["enabled"] = body["enabled"]
            if body["enabled"]:  # enabled again: a fresh start
                values["failures_in_a_row"] = 0
                values["disabled_reason"] = ""
        values["updated_at"] = now_ms()
        async with self.db.transaction() as conn:
            done = await conn.execute(
                update(endpoints).where(endpoints.c.id == endpoint_id).values(**values)
            )
        self._endpoints = None
        self.wake.set()
        return await self.get(endpoint_id) if done.rowcount else None

    async def remove(self, endpoint_id: str) -> bool:
        async with self.db.transaction() as conn:
            done = await conn.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))
            ids = select(deliveries.c.id).where(deliveries.c.endpoint_id == endpoint_id)
            await conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
            await conn.execute(delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id))
        self._endpoints = None
        return bool(done.rowcount)

    async def enabled(self) -> list[Endpoint]:
        """The enabled endpoints, read at most once a second (a change here shows at once)."""
        now = asyncio.get_running_loop().time()
        if self._endpoints is None or now - self._endpoints[0] > 1.0:
            self._endpoints = (now, [e for e in await self.all() if e.enabled])
        return self._endpoints[1]

    # -- the queue -----------------------------------------------------------------------------
    async def enqueue(self, payload: dict[str, Any]) -> int:
        """Queue the event for every endpoint that wants it; how many were queued."""
        event = payload.get("event", "")
        wanting = [e for e in await self.enabled() if e.wants(event, payload)]
        if not wanting:
            return 0
        now = now_ms()
        body = orjson.dumps(payload).decode()
        rows = [
            {
                "id": new_id(),
                "endpoint_id": e.id,
                "event_id": payload["id"],
                "event": event,
                "payload": body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for e in wanting
        ]
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        async with self.db.transaction() as conn:
            await conn.execute(insert(deliveries).values(rows).on_conflict_do_nothing())
        self.wake.set()
        return len(rows)

    async def log(self, endpoint_id: str, limit: int = 50) -> Any:
        """The endpoint's newest deliveries, each with its attempts (newest first)."""
        async with self.db.read() as conn:
            rows = list(
                await conn.execute(
                    select(deliveries)
                    .where(deliveries.c.endpoint_id == endpoint_id)
                    .order_by(deliveries.c.seq.desc())
                    .limit(limit)
                )
            )
            tried = list(
                await conn.execute(
                    select(attempts)
                    .where(attempts.c.delivery_id.in_([r.id for r in rows]))
                    .order_by(attempts.c.id)
                )
            )
        by_delivery: dict[str, list[dict[str, Any]]] = {}
        for a in tried:
            by_delivery.setdefault(a.delivery_id, []).append(
                {
                    "at": a.at,
                    "status_code": a.status_code,
                    "duration_ms": a.duration_ms,
                    "response": a.response,
                    "error": a.error,
                }
            )
        return [
            {
                "id": r.id,
                "event_id": r.event_id,
                "event": r.event,
                "status": r.status,
                "attempts": by_delivery.get(r.id, []),
                "next_attempt_at": r.next_attempt_at if r.status == "pending" else None,
                "created_at": r.created_at,
                "delivered_at": r.delivered_at,
            }
            for r in rows
        ]

    async def redeliver(self, delivery_id: str) -> bool:
        """Send the delivery again (whatever became of it), as soon as its endpoint's turn
        comes; the receiver sees the same `webhook-id`."""
        async with self.db.transaction() as conn:
            done = await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="pending", attempts=0, next_attempt_at=now_ms())
            )
        self.wake.set()
        return bool(done.rowcount)
