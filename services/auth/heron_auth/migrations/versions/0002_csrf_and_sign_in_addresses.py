"""Sessions remember their CSRF token's hash; accounts remember where they signed in from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("csrf_hash", sa.String(64), nullable=True))
    op.create_table(
        "sign_in_addresses",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sign_in_addresses")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("csrf_hash")
