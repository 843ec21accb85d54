"""A collection defined by a file of HERON_CONTENT_COLLECTIONS_DIR names it as its source.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("source", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("source")
