"""Alembic environment of the otp-login plugin's own table."""

from __future__ import annotations

from heron_common.db.migrations import run_alembic_env

from heron_plugins.core.passwordless.models import otp_metadata
from heron_plugins.manifest import plugin_version_table

run_alembic_env(otp_metadata, plugin_version_table("otp-login"))
