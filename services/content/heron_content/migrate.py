"""Apply the content service's Alembic migrations (at start-up and from `heron migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from heron_common.db import Database
from sqlalchemy import text
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Two replicas starting together on PostgreSQL must not both run the DDL.
_ADVISORY_LOCK_ID = 0x68657230  # "her0"
VERSION_TABLE = "alembic_version_content"


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> bool:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
    fresh = (
        MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        is None
    )
    command.upgrade(_alembic_config(connection), "head")
    return fresh


async def upgrade(database: Database) -> bool:
    """Bring the schema to the newest revision (a no-op when it is there already).

    Returns whether the store was empty, i.e. created by this call.
    """
    async with database.transaction() as conn:
        return await conn.run_sync(_upgrade)
