"""Full-text search: each item's `search_text` (its title and text fields), searched through a
GIN index on PostgreSQL and an FTS5 table kept in step by triggers on SQLite.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from heron_content.search import search_text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE items_fts USING fts5(search_text, content='items', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF search_text ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO items_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
]


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(
            sa.Column("search_text", sa.Text, nullable=False, server_default=sa.text("''"))
        )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT items.id, items.title, items.data, collections.schema FROM items "
            "JOIN collections ON collections.id = items.collection_id"
        )
    ).all()
    for item_id, title, data, schema in rows:
        data = orjson.loads(data) if isinstance(data, str | bytes) else data
        schema = orjson.loads(schema) if isinstance(schema, str | bytes) else schema
        conn.execute(
            sa.text("UPDATE items SET search_text = :text WHERE id = :id"),
            {"text": search_text(schema, title, data), "id": item_id},
        )
    if conn.dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_items_search ON items USING gin (to_tsvector('simple', search_text))"
        )
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)
        op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_items_search")
    else:
        for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS items_fts")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("search_text")
