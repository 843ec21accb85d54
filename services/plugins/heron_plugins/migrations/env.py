"""Alembic environment: runs on the connection `heron_common.service.migrate` hands over."""

from __future__ import annotations

from heron_common.db.migrations import run_alembic_env, version_table

from heron_plugins.models import metadata

run_alembic_env(metadata, version_table("plugins"))
