"""The cache administration (the gateway's `/api/cache` and `/admin/api/cache` routes) as a
core plugin: listed in the registry, always active."""

from __future__ import annotations

from heron_plugins.manifest import Manifest

manifest = Manifest(
    name="cache",
    version="1.0.0",
    description="The three-tier cache's statistics, entries and invalidation "
    "(/api/cache, /admin/api/cache).",
    author="Heron",
    core=True,
)
