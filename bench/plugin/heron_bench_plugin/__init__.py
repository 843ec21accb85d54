"""The bench's plugin: one `content:beforeCreate` hook that hands its payload back unchanged,
so `create-item-hooked` measures what a before hook costs a write (the call to the plugins
service and back), not what a plugin does."""

from __future__ import annotations

from typing import Any

from heron_plugins.manifest import Manifest


async def unchanged(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


manifest = Manifest(
    name="bench-hook",
    version="1.0.0",
    description="A before hook that changes nothing.",
    hooks=({"event": "content:beforeCreate", "handler": unchanged},),  # type: ignore[arg-type]
)
