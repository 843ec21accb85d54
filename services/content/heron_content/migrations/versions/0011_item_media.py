"""The media files each item uses, so the media service can ask which files published items
use (anonymous callers get only those). Existing items' files are recorded here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from heron_content.media_refs import used_media

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_media",
        sa.Column(
            "item_id", sa.String(36), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("media_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "media_id", name="pk_item_media"),
    )
    op.create_index("ix_item_media_media", "item_media", ["media_id"])
    bind = op.get_bind()
    schemas = {
        row.id: _document(row.schema)
        for row in bind.execute(sa.text("SELECT id, schema FROM collections"))
    }
    rows = []
    for item in bind.execute(sa.text("SELECT id, collection_id, data FROM items")):
        text = item.data if isinstance(item.data, str) else json.dumps(item.data)
        data = _document(item.data)
        schema = schemas.get(item.collection_id, {})
        rows += [
            {"item_id": item.id, "media_id": m}
            for m in sorted(used_media(schema, data, text) if isinstance(data, dict) else ())
        ]
    if rows:
        op.bulk_insert(sa.table("item_media", sa.column("item_id"), sa.column("media_id")), rows)


def _document(value: object) -> dict:  # type: ignore[type-arg]
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {}


def downgrade() -> None:
    op.drop_index("ix_item_media_media", "item_media")
    op.drop_table("item_media")
