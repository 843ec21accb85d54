"""The values of fields marked `unique`, one row each, so the database refuses a duplicate.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_unique_values",
        sa.Column(
            "collection_id",
            sa.String(36),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("value_key", sa.String(64), nullable=False),
        sa.Column(
            "item_id", sa.String(36), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "field", "value_key", name="pk_item_unique_values"
        ),
    )
    op.create_index("ix_item_unique_values_item", "item_unique_values", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_item_unique_values_item", "item_unique_values")
    op.drop_table("item_unique_values")
