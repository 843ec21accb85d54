"""Posting the queued deliveries: each endpoint's in the order its events came, signed by the
Standard Webhooks convention, retried with exponential backoff and jitter until a 2xx answer.

Headers: `webhook-id` (the event's id: the same on every retry and redelivery, so a receiver
can drop a second copy), `webhook-timestamp` (seconds since the epoch) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, made by the `standardwebhooks`
package with the endpoint's secret). The body is `{"type", "timestamp", "data"}`, `data` being
the event's payload.

A failed attempt (a connection error, a timeout, any answer but 2xx; a redirect is not
followed) is logged with its status, duration, the start of the answer and the error, and the
delivery waits `retry_base_seconds · 2^attempts` (with ±20 % jitter, at most
`retry_max_seconds`, and at least what a 429's or 503's `Retry-After` asks) before the next.
While it waits, the endpoint's later deliveries wait behind it: events of one item never
overtake each other. After `max_attempts` the delivery is `failed` and the queue goes on. After
`disable_after_failures` failed attempts in a row the endpoint is disabled, which its owner
finds in the plugin's activity log and on the endpoint (`disabled_reason`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from heron_common.ids import now_ms
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from heron_plugins.core.webhooks import guard
from heron_plugins.core.webhooks.models import attempts, deliveries, endpoints
from heron_plugins.core.webhooks.service import SNIPPET, Endpoint, Webhooks

logger = logging.getLogger("heron.plugins.webhooks")

SEND_LOCK = 0x57484B53  # one sender at a time across replicas (PostgreSQL)
DEFAULTS: dict[str, Any] = {
    "retry_base_seconds": 5.0,
    "retry_max_seconds": 3600.0,
    "max_attempts": 12,
    "disable_after_failures": 50,
    "timeout_seconds": 10.0,
}


class Sender:
    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks
        self.db = webhooks.db
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            headers={"user-agent": "Heron-Webhooks/1.0"},
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self.sent = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self) -> None:
        while True:
            try:
                pause = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sending webhooks failed")
                pause = 1.0
            try:
                async with asyncio.timeout(pause):
                    await self.webhooks.wake.wait()
            except TimeoutError:
                pass
            self.webhooks.wake.clear()

    async def send_due(self) -> float:
        """Send what is due on every endpoint; how long until the next is due (at most 1 s)."""
        settings = {**DEFAULTS, **(await self.webhooks.context.settings())}
        if self.db.dialect == "postgresql":
            async with self.db.transaction() as conn:
                if not await conn.scalar(select(func.pg_try_advisory_xact_lock(SEND_LOCK))):
                    return 1.0
                return await self._send_due(settings)
        return await self._send_due(settings)

    async def _send_due(self, settings: dict[str, Any]) -> float:
        pause = 1.0
        endpoints_now = await self.webhooks.enabled()
        results = await asyncio.gather(
            *(self._drain(e, settings) for e in endpoints_now), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                logger.error("an endpoint's deliveries failed", exc_info=result)
            else:
                pause = min(pause, result)
        return max(pause, 0.01)

    async def _drain(self, endpoint: Endpoint, settings: dict[str, Any]) -> float:
        """Send the endpoint's due deliveries in order; seconds until its head is due."""
        while True:
            async with self.db.read() as conn:
                head = (
                    await conn.execute(
                        select(deliveries)
                        .where(
                            deliveries.c.endpoint_id == endpoint.id,
                            deliveries.c.status == "pending",
                        )
                        .order_by(deliveries.c.seq)
                        .limit(1)
                    )
                ).first()
            if head is None:
                return 1.0
            wait = float(head.next_attempt_at - now_ms()) / 1000
            if wait > 0:
                return wait
            ok, retry_after, failures = await self._attempt(endpoint, head, settings)
            if ok:
                continue
            if failures >= settings["disable_after_failures"]:
                await self._disable(endpoint, failures)
                return 1.0
            if head.attempts + 1 >= settings["max_attempts"]:
                continue  # this one is `failed` now: the queue goes on
            return 0.01 if retry_after is None else retry_after

    async def _attempt(
        self, endpoint: Endpoint, head: Any, settings: dict[str, Any]
    ) -> tuple[bool, float | None, int]:
        """Whether it was delivered, how long to wait before the next attempt, and the
        endpoint's failed attempts in a row now."""
        payload = orjson.loads(head.payload)
        occurred = datetime.fromtimestamp(payload.get("occurred_at", now_ms()) / 1000, UTC)
        body = orjson.dumps(
            {"type": head.event, "timestamp": occurred.isoformat(), "data": payload}
        ).decode()
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": head.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(endpoint.secret).sign(head.event_id, now, body),
        }
        started = time.perf_counter()
        status: int | None = None
        snippet = error = ""
        retry_after: float | None = None
        try:
            await guard.check(endpoint.url, self.webhooks.allowed)
            answer = await self.client.post(
                endpoint.url,
                content=body.encode(),
                headers=headers,
                timeout=float(settings["timeout_seconds"]),
            )
            status = answer.status_code
            snippet = answer.text[:SNIPPET]
            if 300 <= status < 400:
                error = "redirects are not followed"
            elif status in (429, 503):
                retry_after = _retry_after(answer.headers.get("retry-after"))
        except guard.Refused as exc:
            error = f"refused: {exc}"
        except httpx.TimeoutException:
            error = f"no answer within {settings['timeout_seconds']} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:SNIPPET]
        duration = int((time.perf_counter() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        now_at = now_ms()
        tries = head.attempts + 1
        values: dict[str, Any] = {"attempts": tries, "last_status": status}
        if ok:
            values |= {"status": "delivered", "delivered_at": now_at}
        elif tries >= settings["max_attempts"]:
            values["status"] = "failed"
        else:
            delay = min(
                float(settings["retry_base_seconds"]) * 2 ** (tries - 1),
                float(settings["retry_max_seconds"]),
            ) * random.uniform(0.8, 1.2)
            delay = max(delay, retry_after or 0.0)
            values["next_attempt_at"] = now_at + int(delay * 1000)
            retry_after = delay
        async with self.db.transaction() as conn:
            await conn.execute(
                attempts.insert().values(
                    delivery_id=head.id,
                    at=now_at,
                    status_code=status,
                    duration_ms=duration,
                    response=snippet,
                    error=error,
                )
            )
            await conn.execute(
                update(deliveries).where(deliveries.c.id == head.id).values(**values)
            )
            await conn.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint.id)
                .values(failures_in_a_row=0 if ok else endpoints.c.failures_in_a_row + 1)
            )
            failures = await conn.scalar(
                select(endpoints.c.failures_in_a_row).where(endpoints.c.id == endpoint.id)
            )
        if ok:
            self.sent += 1
        else:
            logger.info(
                "webhook attempt failed",
                extra={"endpoint": endpoint.id, "status": status, "error": error, "tries": tries},
            )
        return ok, retry_after, int(failures or 0)

    async def _disable(self, endpoint: Endpoint, failures: int) -> None:
        reason = f"disabled after {failures} failed attempts in a row; enable it to go on"
        async with self.db.transaction() as conn:
            await conn.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint.id)
                .values(enabled=False, disabled_reason=reason, updated_at=now_ms())
            )
        self.webhooks._endpoints = None
        await self.webhooks.context.log(
            "endpoint_disabled", f"endpoint {endpoint.id} of {endpoint.owner}: {reason}"
        )
        logger.warning(
            "webhook endpoint disabled",
            extra={"endpoint": endpoint.id, "owner": endpoint.owner, "failures": failures},
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` asks for (a number or an HTTP date), at most an hour."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, 3600.0))
