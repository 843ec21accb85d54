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
from dataclasses import dataclass
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
from heron_plugins.core.webhooks.service import DEFAULTS, SNIPPET, Endpoint, Webhooks

logger = logging.getLogger("heron.plugins.webhooks")

SEND_LOCK = 0x57484B53  # one sender at a time across replicas (PostgreSQL)
BATCH = 50
SETTINGS_TTL_SECONDS = 1.0


@dataclass
class Outcome:
    at: int
    status: int | None = None
    snippet: str = ""
    error: str = ""
    duration_ms: int = 0
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


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
        self._signers: dict[str, Webhook] = {}
        self._settings: tuple[float, dict[str, Any]] | None = None

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
        settings = await self._current_settings()
        if self.db.dialect == "postgresql":
            async with self.db.transaction() as conn:
                if not await conn.scalar(select(func.pg_try_advisory_xact_lock(SEND_LOCK))):
                    return 1.0
                return await self._send_due(settings)
        return await self._send_due(settings)

    async def _current_settings(self) -> dict[str, Any]:
        """The plugin's settings, read at most once a second."""
        now = time.monotonic()
        if self._settings is None or now - self._settings[0] > SETTINGS_TTL_SECONDS:
            stored = await self.webhooks.context.settings()
            self._settings = (now, {**DEFAULTS, **stored})
        return self._settings[1]

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
        """Send the endpoint's due deliveries in order, a batch at a time, until one fails;
        seconds until its head is due."""
        while True:
            async with self.db.read() as conn:
                rows = list(
                    await conn.execute(
                        select(deliveries)
                        .where(
                            deliveries.c.endpoint_id == endpoint.id,
                            deliveries.c.status == "pending",
                        )
                        .order_by(deliveries.c.seq)
                        .limit(BATCH)
                    )
                )
            if not rows:
                return 1.0
            wait = float(rows[0].next_attempt_at - now_ms()) / 1000
            if wait > 0:
                return wait
            tried: list[tuple[Any, Outcome]] = []
            for row in rows:
                if row.next_attempt_at > now_ms():
                    break
                outcome = await self._post(endpoint, row, settings)
                tried.append((row, outcome))
                if not outcome.ok:
                    break  # the later ones wait behind it: events keep their order
            failures, retry = await self._record(endpoint, tried, settings)
            row, last = tried[-1]
            if last.ok:
                continue
            if failures >= settings["disable_after_failures"]:
                await self._disable(endpoint, failures)
                return 1.0
            if row.attempts + 1 >= settings["max_attempts"]:
                continue  # this one is `failed` now: the queue goes on
            return retry

    def _signer(self, endpoint: Endpoint) -> Webhook:
        signer = self._signers.get(endpoint.secret)
        if signer is None:
            signer = self._signers[endpoint.secret] = Webhook(endpoint.secret)
        return signer

    async def _post(self, endpoint: Endpoint, row: Any, settings: dict[str, Any]) -> Outcome:
        """One attempt of one delivery (nothing written yet)."""
        payload = orjson.loads(row.payload)
        occurred = datetime.fromtimestamp(payload.get("occurred_at", now_ms()) / 1000, UTC)
        body = orjson.dumps(
            {"type": row.event, "timestamp": occurred.isoformat(), "data": payload}
        ).decode()
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": row.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer(endpoint).sign(row.event_id, now, body),
        }
        started = time.perf_counter()
        outcome = Outcome(at=now_ms())
        try:
            await guard.check(endpoint.url, self.webhooks.allowed)
            answer = await self.client.post(
                endpoint.url,
                content=body.encode(),
                headers=headers,
                timeout=float(settings["timeout_seconds"]),
            )
            outcome.status = answer.status_code
            outcome.snippet = answer.text[:SNIPPET]
            if 300 <= answer.status_code < 400:
                outcome.error = "redirects are not followed"
            elif answer.status_code in (429, 503):
                outcome.retry_after = _retry_after(answer.headers.get("retry-after"))
        except guard.Refused as exc:
            outcome.error = f"refused: {exc}"
        except httpx.TimeoutException:
            outcome.error = f"no answer within {settings['timeout_seconds']} s"
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:SNIPPET]
        outcome.duration_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    async def _record(
        self, endpoint: Endpoint, tried: list[tuple[Any, Outcome]], settings: dict[str, Any]
    ) -> tuple[int, float]:
        """Write the batch's attempts in one transaction; the endpoint's failed attempts in a
        row now, and how long the failed one (the last, if any) waits before its next."""
        delivered = [r.id for r, o in tried if o.ok]
        row, last = tried[-1]
        retry = 0.01
        async with self.db.transaction() as conn:
            await conn.execute(
                attempts.insert().values(
                    [
                        {
                            "delivery_id": r.id,
                            "at": o.at,
                            "status_code": o.status,
                            "duration_ms": o.duration_ms,
                            "response": o.snippet,
                            "error": o.error,
                        }
                        for r, o in tried
                    ]
                )
            )
            by_status: dict[int | None, list[str]] = {}
            for r, o in tried:
                if o.ok:
                    by_status.setdefault(o.status, []).append(r.id)
            for status, ids in by_status.items():  # one statement per answer code (usually 1)
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids))
                    .values(
                        status="delivered",
                        attempts=deliveries.c.attempts + 1,
                        last_status=status,
                        delivered_at=last.at,
                    )
                )
            if not last.ok:
                tries = row.attempts + 1
                values: dict[str, Any] = {"attempts": tries, "last_status": last.status}
                if tries >= settings["max_attempts"]:
                    values["status"] = "failed"
                else:
                    delay = min(
                        float(settings["retry_base_seconds"]) * 2 ** (tries - 1),
                        float(settings["retry_max_seconds"]),
                    ) * random.uniform(0.8, 1.2)
                    retry = max(delay, last.retry_after or 0.0)
                    values["next_attempt_at"] = last.at + int(retry * 1000)
                await conn.execute(
                    update(deliveries).where(deliveries.c.id == row.id).values(**values)
                )
                logger.info(
                    "webhook attempt failed",
                    extra={
                        "endpoint": endpoint.id,
                        "status": last.status,
                        "error": last.error,
                        "tries": tries,
                    },
                )
            await conn.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint.id)
                .values(failures_in_a_row=endpoints.c.failures_in_a_row + 1 if not last.ok else 0)
            )
            failures = await conn.scalar(
                select(endpoints.c.failures_in_a_row).where(endpoints.c.id == endpoint.id)
            )
        self.sent += len(delivered)
        return int(failures or 0), retry

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
