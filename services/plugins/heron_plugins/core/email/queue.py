"""The durable queue: a message is a row before anything is sent, so a provider outage delays
mail and never loses it, and a request that queued one never waits on the provider.

The sender claims due messages for a lease (so two replicas never send one twice while both
are up), sends them one by one, and marks each sent (its bodies emptied) or due again after a
growing pause with jitter; after `max_attempts` a message is `failed`. Log lines name the
message, its template and a masked address, never its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import Any

from heron_common.ids import new_id, now_ms
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from sqlalchemy import select, update

from heron_plugins.core.email.backends import Backend, Message, Refused, Retry, backend_for
from heron_plugins.core.email.models import messages
from heron_plugins.manifest import PluginContext

logger = logging.getLogger("heron.plugins.email")

TEMPLATES = Path(__file__).resolve().parent / "templates"
LEASE_MS = 60_000
BATCH = 20
POLL_SECONDS = 1.0

DEFAULTS: dict[str, Any] = {
    "backend": "development",
    "from_address": "heron@localhost",
    "from_name": "Heron",
    "site_name": "Heron",
    "smtp_host": "127.0.0.1",
    "smtp_port": 587,
    "smtp_security": "starttls",
    "smtp_username": "",
    "smtp_password": "",
    "sendgrid_api_key": "",
    "sendgrid_api_url": "https://api.sendgrid.com",
    "development_folder": "",
    "retry_base_seconds": 5.0,
    "retry_max_seconds": 600.0,
    "max_attempts": 20,
    "timeout_seconds": 10.0,
}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def masked(address: str) -> str:
    """`j***@example.com`: enough to tell messages apart in a log, not to harvest addresses."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def render(template: str, values: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of a template (`<name>.subject.txt`, `.txt`, `.html`)."""
    subject = _environment.get_template(f"{template}.subject.txt").render(values).strip()
    text = _environment.get_template(f"{template}.txt").render(values)
    try:
        html = _environment.get_template(f"{template}.html").render(values)
    except TemplateNotFound:  # a template without an HTML part
        html = ""
    return " ".join(subject.split()), text, html


class Mailer:
    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.db = context.database
        self._wake = asyncio.Event()
        self._backend: Backend | None = None
        self._backend_settings: dict[str, Any] | None = None

    async def settings(self) -> dict[str, Any]:
        return {**DEFAULTS, **(await self.context.settings())}

    async def enqueue(self, to: str, template: str, values: dict[str, Any]) -> str:
        """Queue a message rendered from `template`; its id. Returns at once: sending is the
        sender's job."""
        settings = await self.settings()
        subject, text, html = render(template, {"site": settings["site_name"], **values})
        now = now_ms()
        message_id = new_id()
        async with self.db.transaction() as conn:
            await conn.execute(
                messages.insert(),
                {
                    "id": message_id,
                    "to_address": to,
                    "subject": subject,
                    "text_body": text,
                    "html_body": html,
                    "template": template,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": "",
                    "created_at": now,
                    "sent_at": None,
                },
            )
        logger.info("mail queued", extra={"id": message_id, "template": template, "to": masked(to)})
        self._wake.set()
        return message_id

    async def _backend_now(self, settings: dict[str, Any]) -> Backend:
        if self._backend is None or settings != self._backend_settings:
            if self._backend is not None:
                await self._backend.close()
            data_dir = Path(getattr(self.context.service_settings, "data_dir", "data"))
            self._backend = backend_for(settings, data_dir)
            self._backend_settings = settings
        return self._backend

    async def run(self) -> None:
        while True:
            try:
                sent = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the mail queue failed; retrying")
                sent = 0
            if sent < BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                self._wake.clear()

    async def _claim(self) -> list[Any]:
        now = now_ms()
        async with self.db.transaction() as conn:
            query = (
                select(messages)
                .where(messages.c.status == "pending", messages.c.next_attempt_at <= now)
                .order_by(messages.c.seq)
                .limit(BATCH)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(await conn.execute(query))
            if rows:
                await conn.execute(
                    update(messages)
                    .where(messages.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + LEASE_MS)
                )
        return rows

    async def drain(self) -> int:
        """Send the messages that are due; how many were tried."""
        rows = await self._claim()
        if not rows:
            return 0
        settings = await self.settings()
        backend = await self._backend_now(settings)
        for row in rows:
            message = Message(row.id, row.to_address, row.subject, row.text_body, row.html_body)
            try:
                await backend.send(message)
            except (Retry, Refused) as exc:
                await self._failed(row, settings, str(exc), final=isinstance(exc, Refused))
                continue
            except Exception as exc:
                await self._failed(row, settings, type(exc).__name__, final=False)
                continue
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(messages)
                    .where(messages.c.id == row.id)
                    .values(
                        status="sent",
                        attempts=row.attempts + 1,
                        sent_at=now_ms(),
                        text_body="",
                        html_body="",
                        last_error="",
                    )
                )
            logger.info(
                "mail sent",
                extra={"id": row.id, "template": row.template, "to": masked(row.to_address)},
            )
        return len(rows)

    async def _failed(self, row: Any, settings: dict[str, Any], error: str, *, final: bool) -> None:
        attempts = row.attempts + 1
        final = final or attempts >= int(settings["max_attempts"])
        pause = min(
            float(settings["retry_base_seconds"]) * 2 ** (attempts - 1),
            float(settings["retry_max_seconds"]),
        )
        pause *= random.uniform(0.8, 1.2)
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500]}
        if final:
            values.update(status="failed", text_body="", html_body="")
        else:
            values["next_attempt_at"] = now_ms() + int(pause * 1000)
        async with self.db.transaction() as conn:
            await conn.execute(update(messages).where(messages.c.id == row.id).values(**values))
        logger.warning(
            "mail failed" if final else "mail delayed",
            extra={
                "id": row.id,
                "template": row.template,
                "to": masked(row.to_address),
                "attempts": attempts,
                "error": error[:200],
            },
        )

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(
                    messages.c.id,
                    messages.c.to_address,
                    messages.c.subject,
                    messages.c.template,
                    messages.c.status,
                    messages.c.attempts,
                    messages.c.last_error,
                    messages.c.created_at,
                    messages.c.sent_at,
                )
                .order_by(messages.c.seq.desc())
                .limit(limit)
            )
            return [{str(k): v for k, v in r._mapping.items()} for r in rows]

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
