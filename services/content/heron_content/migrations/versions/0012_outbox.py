"""The transactional outbox: after-events written in the same transaction as their change,
until the relay has delivered them to the plugins service (heron_common.outbox).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from heron_common.outbox import OUTBOX, outbox_columns

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(OUTBOX, *outbox_columns())


def downgrade() -> None:
    op.drop_table(OUTBOX)
