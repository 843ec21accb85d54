"""Apply the content service's Alembic migrations (at start-up and from `heron migrate`)."""

from __future__ import annotations

from pathlib import Path

from heron_common import migrations
from heron_common.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK_ID = 0x68657230  # "her0"
VERSION_TABLE = "alembic_version_content"


async def upgrade(database: Database) -> bool:
    """Bring the schema to the newest revision; True when the store was created by this call."""
    return await migrations.upgrade(
        database,
        script_location=MIGRATIONS,
        version_table=VERSION_TABLE,
        advisory_lock_id=_ADVISORY_LOCK_ID,
    )
