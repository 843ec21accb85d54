"""The passwordless plugins' tables: email codes (otp-login) and magic links
(magic-link-auth). Only hashes of codes and tokens are stored."""

from __future__ import annotations

import sqlalchemy as sa

otp_metadata = sa.MetaData()
link_metadata = sa.MetaData()

codes = sa.Table(
    "otp_codes",
    otp_metadata,
    # One live code per account key: a new request replaces it.
    sa.Column("email_key", sa.String(254), primary_key=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

links = sa.Table(
    "magic_links",
    link_metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_magic_links_expires", "expires_at"),
)
