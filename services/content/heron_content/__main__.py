"""Entry point: `python -m heron_content [serve|migrate]` (serve is the default)."""

from __future__ import annotations

import sys

import uvloop
from heron_common.db import Database, create_engine
from heron_common.logging import configure_logging

from heron_content import migrate
from heron_content.server import serve
from heron_content.settings import ContentSettings


async def _migrate(settings: ContentSettings) -> None:
    database = Database(create_engine(settings.resolved_database_url("content")))
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command not in ("serve", "migrate"):
        sys.exit(f"usage: python -m heron_content [serve|migrate] (got {command!r})")
    settings = ContentSettings()
    configure_logging("content", settings.log_level, settings.log_json)
    uvloop.run(serve(settings) if command == "serve" else _migrate(settings))


if __name__ == "__main__":
    main()
