"""Idempotency keys are stored per caller: the SHA-256 of the author and the key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_items = sa.table(
    "items",
    sa.column("id", sa.String),
    sa.column("author_id", sa.String),
    sa.column("idempotency_key", sa.String),
)


def upgrade() -> None:
    # Stored keys were the caller's raw keys; a retry after the upgrade must still find them.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_items.c.id, _items.c.author_id, _items.c.idempotency_key).where(
            _items.c.idempotency_key.is_not(None)
        )
    ).all()
    for item_id, author_id, key in rows:
        scoped = hashlib.sha256(f"{author_id}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()
        bind.execute(_items.update().where(_items.c.id == item_id).values(idempotency_key=scoped))


def downgrade() -> None:
    # The raw keys cannot be recovered; forgetting them only ends replays of old creates.
    op.execute(_items.update().values(idempotency_key=None))
