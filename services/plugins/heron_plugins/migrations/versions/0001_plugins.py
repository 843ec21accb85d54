"""Installed plugins and the log of changes made to them.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("settings", JsonDocument, nullable=False),
        sa.Column("installed_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "plugin_activity",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_plugin_activity_plugin", "plugin_activity", ["plugin", "id"])


def downgrade() -> None:
    op.drop_index("ix_plugin_activity_plugin", "plugin_activity")
    op.drop_table("plugin_activity")
    op.drop_table("plugins")
