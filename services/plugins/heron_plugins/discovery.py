"""Finding plugins: every entry point of the group `heron.plugins` in the environment.

Each is loaded in isolation: one that fails to import, loads something that is not a
`Manifest`, or declares a manifest that does not hold is kept as a `Found` with its error, so
the registry lists it (status `error`, with the reason) and the service goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import ValidationError

from heron_plugins.manifest import Manifest

logger = logging.getLogger("heron.plugins")

GROUP = "heron.plugins"


@dataclass(frozen=True)
class Found:
    name: str
    manifest: Manifest | None = None
    error: str = ""


def discover(group: str = GROUP) -> dict[str, Found]:
    """Every plugin the environment declares, by name."""
    found: dict[str, Found] = {}
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        plugin = _load(point)
        if plugin.name in found:
            plugin = Found(plugin.name, error=f"two packages declare a plugin {plugin.name!r}")
        if plugin.error:
            logger.warning(
                "plugin not loaded", extra={"plugin": plugin.name, "error": plugin.error}
            )
        found[plugin.name] = plugin
    return found


def _load(point: EntryPoint) -> Found:
    try:
        loaded = point.load()
    except ValidationError as exc:  # a manifest built at import that does not hold
        return Found(point.name, error=f"its manifest is invalid: {_summary(exc)}")
    except Exception as exc:  # a plugin's own failure: reported, never fatal
        return Found(point.name, error=f"it failed to import: {type(exc).__name__}: {exc}")
    if callable(loaded) and not isinstance(loaded, Manifest):
        try:
            loaded = loaded()
        except Exception as exc:
            return Found(point.name, error=f"its manifest factory raised {type(exc).__name__}")
    if isinstance(loaded, dict):
        try:
            loaded = Manifest.model_validate(loaded)
        except ValidationError as exc:
            return Found(point.name, error=f"its manifest is invalid: {_summary(exc)}")
    if not isinstance(loaded, Manifest):
        return Found(point.name, error="its entry point does not load a Manifest")
    if loaded.name != point.name:
        return Found(
            point.name,
            error=f"its entry point is named {point.name!r} but its manifest {loaded.name!r}",
        )
    return Found(point.name, manifest=loaded)


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "manifest"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
