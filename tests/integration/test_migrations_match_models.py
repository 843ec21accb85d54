"""Each service's Alembic history builds exactly the tables its SQLAlchemy models declare, on
SQLite and PostgreSQL: a column added to a model without a migration (or the reverse) fails
here, not in production."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from heron_auth import models as auth_models
from heron_auth.server import SPEC as AUTH
from heron_common.db import Database, create_engine
from heron_common.registry import SERVICES as REGISTERED
from heron_common.service import ServiceSpec, migrate
from heron_content import models as content_models
from heron_content.server import SPEC as CONTENT
from heron_media import models as media_models
from heron_media.server import SPEC as MEDIA
from heron_plugins import models as plugins_models
from heron_plugins.server import SPEC as PLUGINS
from sqlalchemy.engine import Connection

SERVICES: dict[str, tuple[ServiceSpec[Any], ModuleType]] = {
    "auth": (AUTH, auth_models),
    "content": (CONTENT, content_models),
    "media": (MEDIA, media_models),
    "plugins": (PLUGINS, plugins_models),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_the_migrations_build_what_the_models_declare(
    service: str, database_url: str
) -> None:
    spec, models = SERVICES[service]

    def differences(connection: Connection) -> list[Any]:
        found = compare_metadata(MigrationContext.configure(connection), models.metadata)
        # Besides Alembic's own version table, the models cannot declare the full-text search
        # structures (an FTS5 virtual table with its shadow tables on SQLite, a generated
        # tsvector column and its GIN index on PostgreSQL): migrations 0007 and 0010 make
        # them, tests/e2e/test_queries.py searches through them.
        return [
            d
            for d in found
            if not (d[0] == "remove_table" and d[1].name == spec.version_table)
            and not (d[0] == "remove_table" and d[1].name.startswith("items_fts"))
            and not (d[0] == "remove_index" and d[1].name == "ix_items_search_vector")
            and not (d[0] == "remove_column" and d[3].name == "search_vector")
        ]

    database = Database(create_engine(database_url))
    try:
        assert await migrate(spec, database)
        async with database.read() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await database.dispose()


def test_every_service_is_checked() -> None:
    assert set(SERVICES) == {s.name for s in REGISTERED}
