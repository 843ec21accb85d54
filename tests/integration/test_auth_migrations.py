"""The auth store's migrations on a store that already holds accounts: revision 0003 gives each
account a unique username from its email and stores emails in lower case, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from heron_auth.server import SPEC
from heron_common.db import Database, create_engine
from heron_common.service import migrate
from sqlalchemy import text
from sqlalchemy.engine import Connection


def _to(revision: str) -> object:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(SPEC.migrations))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def test_existing_accounts_get_unique_usernames_and_lower_case_emails(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0002"))  # type: ignore[arg-type]
            await conn.execute(
                text(
                    "INSERT INTO roles (name, description, permissions, builtin, updated_at) "
                    "VALUES ('viewer', 'v', '[]', true, 0)"
                )
            )
            for n, email in enumerate(
                ("Jane.Doe@Example.com", "jane.doe@other.example", "ab@example.com", "é@x.io")
            ):
                await conn.execute(
                    text(
                        "INSERT INTO users (id, email, email_key, display_name, password_hash, "
                        "status, role, created_at, updated_at) VALUES "
                        "(:id, :email, :key, 'n', 'h', 'active', 'viewer', :at, :at)"
                    ),
                    {"id": f"u{n}", "email": email, "key": email.casefold(), "at": n},
                )
            # Rows that hang off the users (ON DELETE CASCADE): signed-in sessions, API tokens.
            await conn.execute(
                text(
                    "INSERT INTO sessions (id, user_id, kind, created_at, expires_at) "
                    "VALUES ('s0', 'u0', 'password', 0, 9999999999999)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at) "
                    "VALUES ('t0', 'u1', 'ci', 'heron_ab', 'hash', 0)"
                )
            )
        # As every service does at start (heron_common.service.migrate).
        assert not await migrate(SPEC, Database(engine))
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    text("SELECT id, email, username, first_name FROM users ORDER BY id")
                )
            ).all()
            version = (
                await conn.execute(text(f"SELECT version_num FROM {SPEC.version_table}"))
            ).all()
        assert [tuple(r) for r in rows] == [
            ("u0", "jane.doe@example.com", "jane.doe", ""),
            ("u1", "jane.doe@other.example", "jane.doe2", ""),
            ("u2", "ab@example.com", "user_ab", ""),
            ("u3", "é@x.io", "user_e", ""),
        ]
        assert version and version[0][0] >= "0003"
        async with engine.connect() as conn:
            # Nothing that hung off the users was lost to a table rebuild.
            kept = [
                (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                for table in ("sessions", "api_tokens")
            ]
            assert kept == [1, 1]
            # And the store still enforces its foreign keys afterwards.
            with pytest.raises(Exception, match=r"(?i)foreign key"):
                await conn.execute(
                    text(
                        "INSERT INTO sessions (id, user_id, kind, created_at, expires_at) "
                        "VALUES ('s9', 'nobody', 'password', 0, 1)"
                    )
                )
        async with engine.connect() as conn:
            with pytest.raises(Exception, match=r"(?i)unique"):
                await conn.execute(text("UPDATE users SET username = 'jane.doe' WHERE id = 'u1'"))
    finally:
        await engine.dispose()
