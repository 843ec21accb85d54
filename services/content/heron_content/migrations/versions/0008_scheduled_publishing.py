"""Scheduled publishing: when an item goes public or back to draft on its own, who asked for
it (and under which role), and how the last try went.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("publish_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("unpublish_at", sa.BigInteger, nullable=True))
        batch.add_column(
            sa.Column("scheduled_by", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("scheduled_role", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("schedule_error", sa.Text, nullable=False, server_default=""))
        batch.add_column(
            sa.Column("schedule_attempts", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("schedule_retry_at", sa.BigInteger, nullable=True))
    # The scheduler looks for due items: only the few with a schedule are in these indexes.
    op.create_index(
        "ix_items_publish_at",
        "items",
        ["publish_at"],
        postgresql_where=sa.text("publish_at IS NOT NULL"),
        sqlite_where=sa.text("publish_at IS NOT NULL"),
    )
    op.create_index(
        "ix_items_unpublish_at",
        "items",
        ["unpublish_at"],
        postgresql_where=sa.text("unpublish_at IS NOT NULL"),
        sqlite_where=sa.text("unpublish_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_items_unpublish_at", "items")
    op.drop_index("ix_items_publish_at", "items")
    with op.batch_alter_table("items") as batch:
        for column in (
            "schedule_retry_at",
            "schedule_attempts",
            "schedule_error",
            "scheduled_role",
            "scheduled_by",
            "unpublish_at",
            "publish_at",
        ):
            batch.drop_column(column)
