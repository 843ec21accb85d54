"""The email plugin: mail from a durable queue, through SMTP, SendGrid, or (the default, for
development) a folder and the log. Other plugins send with `send(to, template, values)`;
the templates are Jinja2 (`templates/<name>.subject.txt`, `.txt`, `.html`, HTML autoescaped).

Route (permission `email.manage`): `GET /api/plugins/email/messages`, the latest messages'
addresses, subjects and states (never their bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson

from heron_plugins.core.email.queue import DEFAULTS, Mailer
from heron_plugins.manifest import Manifest, PluginContext, PluginRequest, PluginResponse, Route

PERMISSION = "email.manage"


class _Running:
    mailer: Mailer | None = None
    task: asyncio.Task[None] | None = None


_running = _Running()


class NotRunning(Exception):
    """The email plugin is not active in this process."""


async def send(to: str, template: str, values: dict[str, Any]) -> str:
    """Queue a message to `to` from `template` with `values`; its id."""
    if _running.mailer is None:
        raise NotRunning("the email plugin is not active")
    return await _running.mailer.enqueue(to, template, values)


async def start(context: PluginContext) -> None:
    mailer = Mailer(context)
    _running.mailer = mailer
    _running.task = asyncio.create_task(mailer.run(), name="email-sender")


async def stop() -> None:
    task, mailer = _running.task, _running.mailer
    _running.task = _running.mailer = None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if mailer is not None:
        await mailer.close()


async def list_messages(request: PluginRequest) -> PluginResponse:
    if _running.mailer is None:
        return PluginResponse(503, b'{"error": "The email plugin is starting; retry shortly."}')
    rows = await _running.mailer.recent(100)
    return PluginResponse(200, orjson.dumps({"data": rows, "meta": {"count": len(rows)}}))


def _string(description: str, **more: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **more}


manifest = Manifest(
    name="email",
    version="1.0.0",
    description="Mail from a durable queue, retried through provider outages: SMTP, SendGrid, "
    "or a development folder.",
    author="Heron",
    permissions=(PERMISSION,),
    migrations=Path(__file__).resolve().parent / "migrations",
    start=start,
    stop=stop,
    routes=(Route(method="GET", path="/messages", permission=PERMISSION, handler=list_messages),),
    settings_schema={
        "type": "object",
        "properties": {
            "backend": {
                "enum": ["development", "smtp", "sendgrid"],
                "default": DEFAULTS["backend"],
                "description": "development writes each message to a folder and the log.",
            },
            "from_address": _string(
                "The sender's address.", default=DEFAULTS["from_address"], maxLength=254
            ),
            "from_name": _string("The sender's name.", default=DEFAULTS["from_name"]),
            "site_name": _string("What the messages call this site.", default="Heron"),
            "smtp_host": _string("SMTP server.", default=DEFAULTS["smtp_host"]),
            "smtp_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587},
            "smtp_security": {
                "enum": ["starttls", "tls", "none"],
                "default": "starttls",
                "description": "starttls (port 587), tls (implicit, port 465) or none.",
            },
            "smtp_username": _string("SMTP user name (empty: no authentication).", default=""),
            "smtp_password": _string("SMTP password.", writeOnly=True),
            "sendgrid_api_key": _string("SendGrid API key.", writeOnly=True),
            "sendgrid_api_url": _string(
                "SendGrid's API (or a compatible one).", default=DEFAULTS["sendgrid_api_url"]
            ),
            "development_folder": _string(
                "Where the development backend writes messages (empty: <data dir>/mail)."
            ),
            "retry_base_seconds": {"type": "number", "minimum": 0.05, "maximum": 3600},
            "retry_max_seconds": {"type": "number", "minimum": 0.05, "maximum": 86400},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
            "timeout_seconds": {"type": "number", "minimum": 0.5, "maximum": 120},
        },
        "additionalProperties": False,
    },
)
