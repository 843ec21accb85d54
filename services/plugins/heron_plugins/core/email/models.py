"""The email plugin's table: the durable queue of messages to send."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Seq = sa.BigInteger().with_variant(sa.Integer, "sqlite")

messages = sa.Table(
    "email_messages",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("to_address", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    # Emptied once sent: a code or a link in a message is not kept after it went out.
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text, nullable=False),
    sa.Column("template", sa.String(100), nullable=False),
    # pending → sent, or failed after the last attempt.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("sent_at", sa.BigInteger, nullable=True),
    sa.Index("ix_email_messages_due", "status", "next_attempt_at"),
)
