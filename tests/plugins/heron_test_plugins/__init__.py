"""Plugins for the tests: installed into a test's environment (tests.e2e.test_plugins) and
found through their entry points, as any plugin is."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from heron_plugins.manifest import Manifest, PluginRequest, PluginResponse, Reject


async def check_title(payload: dict[str, Any]) -> dict[str, Any]:
    """Refuses titles starting with "Veto"; marks the others as checked; makes the data of
    "Break the data" wrong (the content service must check the result again)."""
    item = payload["item"]
    if item["title"].startswith("Veto"):
        raise Reject("titles starting with Veto are refused", status=409)
    if item["title"] == "Break the data":
        item["data"] = {"count": "not a number"}
    item["title"] = item["title"] + " (checked)"
    return payload


def check_upload(payload: dict[str, Any]) -> None:
    if "forbidden" in payload["file"]["filename"]:
        raise Reject("forbidden files are not taken")


SEEN: list[dict[str, Any]] = []
"""Every after-event the tester's handlers received, in order (in the plugins service)."""

AFTER_EVENTS = (
    "content:afterCreate",
    "content:afterUpdate",
    "content:afterDelete",
    "content:afterPublish",
    "content:afterUnpublish",
    "collection:afterChange",
    "media:afterUpload",
    "media:afterDelete",
    "auth:afterLogin",
    "auth:afterRegister",
)


async def remember(payload: dict[str, Any]) -> None:
    SEEN.append(payload)


def seen(request: PluginRequest) -> Any:
    wanted = request.query.get("event", [""])[0]
    return [p for p in SEEN if not wanted or p["event"] == wanted]


def hello(request: PluginRequest) -> Any:
    if request.method == "POST":
        return PluginResponse(201, b'{"echo": ' + request.body + b"}")
    return {"greeting": "hello", "user": request.user_id, "who": request.query.get("who", [""])[0]}


async def slow(payload: dict[str, Any]) -> None:
    if "slow" in payload["item"].get("title", ""):
        await asyncio.sleep(2)


async def slow_after(payload: dict[str, Any]) -> None:
    """Past its deadline for lazy items: the write it follows never waits for it."""
    if "lazy" in payload["item"].get("title", ""):
        await asyncio.sleep(3)


def failing(payload: dict[str, Any]) -> None:
    time.sleep(0.01)
    raise RuntimeError("this hook always fails")


tester = Manifest(
    name="tester",
    version="1.2.0",
    description="Greets.",
    author="Heron tests",
    permissions=("tester.use",),
    routes=(
        {"method": "GET", "path": "/hello", "permission": "tester.use", "handler": hello},
        {"method": "POST", "path": "/echo/{what}", "permission": "public", "handler": hello},
        {"method": "GET", "path": "/events", "permission": "tester.use", "handler": seen},
    ),  # type: ignore[arg-type]
    hooks=(
        {"event": "content:beforeCreate", "priority": 10, "handler": check_title},
        {"event": "media:beforeUpload", "handler": check_upload},
        *({"event": event, "priority": 50, "handler": remember} for event in AFTER_EVENTS),
    ),  # type: ignore[arg-type]
    settings_schema={
        "type": "object",
        "properties": {
            "greeting": {"type": "string", "maxLength": 40, "default": "hello"},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
            "api_key": {"type": "string", "minLength": 8, "writeOnly": True},
        },
        "additionalProperties": False,
    },
)

needs_tester = Manifest(name="needs-tester", version="0.1.0", dependencies={"tester": ">=1.0,<2"})

needs_new_tester = Manifest(
    name="needs-new-tester", version="0.1.0", dependencies={"tester": ">=2"}
)

bad_manifest = {"name": "bad-manifest", "version": "not a version"}

sleeper = Manifest(
    name="sleeper",
    version="1.0.0",
    hooks=(
        {"event": "content:beforeCreate", "timeout_ms": 200, "on_error": "fail", "handler": slow},
        {"event": "content:afterCreate", "timeout_ms": 1000, "handler": slow_after},
    ),  # type: ignore[arg-type]
)

skipper = Manifest(
    name="skipper",
    version="1.0.0",
    hooks=(
        {"event": "content:beforeCreate", "priority": 1, "on_error": "skip", "handler": failing},
        {"event": "content:afterUpdate", "priority": 1, "handler": failing},
    ),  # type: ignore[arg-type]
)
