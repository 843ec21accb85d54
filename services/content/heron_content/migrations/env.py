"""Alembic environment: runs on the connection handed over by `heron_content.migrate`."""

from __future__ import annotations

from heron_common.migrations import run_alembic_env

from heron_content.migrate import VERSION_TABLE
from heron_content.models import metadata

run_alembic_env(metadata, VERSION_TABLE)
