"""Alembic environment of the email plugin's own tables (run by the plugins service when the
plugin is installed or uninstalled)."""

from __future__ import annotations

from heron_common.db.migrations import run_alembic_env

from heron_plugins.core.email.models import metadata
from heron_plugins.manifest import plugin_version_table

run_alembic_env(metadata, plugin_version_table("email"))
