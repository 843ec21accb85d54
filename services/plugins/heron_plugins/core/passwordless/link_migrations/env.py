"""Alembic environment of the magic-link-auth plugin's own table."""

from __future__ import annotations

from heron_common.db.migrations import run_alembic_env

from heron_plugins.core.passwordless.models import link_metadata
from heron_plugins.manifest import plugin_version_table

run_alembic_env(link_metadata, plugin_version_table("magic-link-auth"))
