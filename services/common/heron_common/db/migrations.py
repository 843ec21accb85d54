"""Apply a service's Alembic history (at start-up and from `heron migrate`).

Each service keeps its own history and version table in its own database; this runs it on a
connection of the service's `Database`, under a PostgreSQL advisory lock so replicas starting
together never both run the DDL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from heron_common.db import Database
from heron_common.db.revisions import version_table

__all__ = ["downgrade", "run_alembic_env", "upgrade", "version_table"]


def _upgrade(
    connection: Connection,
    script_location: Path,
    version_table: str,
    lock: int,
    down: bool = False,
) -> bool:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock})
    fresh = (
        MigrationContext.configure(
            connection, opts={"version_table": version_table}
        ).get_current_revision()
        is None
    )
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    if down:
        command.downgrade(config, "base")
    else:
        command.upgrade(config, "head")
    return fresh


async def upgrade(
    database: Database, *, script_location: Path, version_table: str, advisory_lock_id: int
) -> bool:
    """Bring the schema to the newest revision (a no-op when it is there already).

    Returns whether the store was empty, i.e. created by this call.
    """
    if database.dialect == "sqlite":
        return await _upgrade_sqlite(database, script_location, version_table)
    async with database.transaction() as conn:
        return await conn.run_sync(_upgrade, script_location, version_table, advisory_lock_id)


async def downgrade(
    database: Database, *, script_location: Path, version_table: str, advisory_lock_id: int
) -> None:
    """Undo every revision of the history (a plugin's own tables, when it is uninstalled)."""
    if database.dialect == "sqlite":
        await _upgrade_sqlite(database, script_location, version_table, down=True)
        return
    async with database.transaction() as conn:
        await conn.run_sync(_upgrade, script_location, version_table, advisory_lock_id, True)


async def _upgrade_sqlite(
    database: Database, script_location: Path, version_table: str, down: bool = False
) -> bool:
    """SQLite changes a table by rebuilding it (Alembic's batch mode): dropping the old table
    would cascade its deletes into every table that references it, so the migrations run with
    foreign keys off, are checked afterwards, and the connection is not reused."""
    async with database.engine.connect() as conn:
        try:
            # Only outside a transaction does this take effect: before any statement that
            # opens one.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            fresh = await conn.run_sync(_upgrade, script_location, version_table, 0, down)
            broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(
                    f"the migrations left rows that break foreign keys: {broken[:5]}"
                )
            await conn.commit()
        finally:
            # Never back into the pool with foreign keys off.
            await conn.invalidate()
    return fresh


def run_alembic_env(target_metadata: MetaData, version_table: str) -> None:
    """The body of a service's Alembic `env.py`: run on the connection `upgrade` handed over."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `heron migrate` or the service's start-up")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table=version_table,
    )
    with context.begin_transaction():
        context.run_migrations()
