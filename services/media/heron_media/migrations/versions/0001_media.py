"""Media files.

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
        "media",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("folder", sa.String(1024), nullable=False),
        sa.Column("alt", sa.Text, nullable=False),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("tags", JsonDocument, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("uploaded_by", sa.String(36), nullable=False),
        sa.Column("uploaded_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("multipart_id", sa.String(1024), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    )
    op.create_index("media_state_uploaded", "media", ["state", "uploaded_at", "id"])
    op.create_index("media_sha256", "media", ["sha256"])
    op.create_index("media_folder", "media", ["folder"])
    op.create_index("media_heartbeat", "media", ["state", "heartbeat_at"])


def downgrade() -> None:
    op.drop_table("media")
