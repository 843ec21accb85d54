"""Users gain SonicJS's `username`, first and last name; emails are stored in lower case.

Existing accounts get a username derived from their email's local part (`jane.doe@…` →
`jane.doe`, then `jane.doe2`, … on a clash), in the order they were created.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _derived(email: str, taken: set[str]) -> str:
    # The rule as of this revision (heron_auth.profile may change; this backfill may not).
    local = email.split("@", 1)[0].split("+", 1)[0]
    ascii_only = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9_.-]+", "", ascii_only.lower())[:32]
    if len(base) < 3:
        base = f"user_{base}" if base else "user"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = base[: 32 - len(str(n))] + str(n)
    return candidate


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("username", sa.String(32), nullable=True))
        batch.add_column(sa.Column("first_name", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("last_name", sa.String(100), nullable=False, server_default=""))
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("email", sa.String),
        sa.column("username", sa.String),
        sa.column("created_at", sa.BigInteger),
    )
    conn = op.get_bind()
    taken: set[str] = set()
    rows = conn.execute(
        sa.select(users.c.id, users.c.email).order_by(users.c.created_at, users.c.id)
    )
    for user_id, email in rows.all():
        username = _derived(email.lower(), taken)
        taken.add(username)
        conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(username=username, email=email.lower())
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_users_username", ["username"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_username", type_="unique")
        batch.drop_column("last_name")
        batch.drop_column("first_name")
        batch.drop_column("username")
