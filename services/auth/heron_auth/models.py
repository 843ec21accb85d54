"""Auth tables (SQLAlchemy Core): users, roles, sessions, refresh and API tokens, revocations,
signing keys. Secrets are stored only as hashes; timestamps are epoch milliseconds."""

from __future__ import annotations

from heron_common.outbox import outbox_table
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

roles = Table(
    "roles",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("permissions", JSON, nullable=False),
    Column("builtin", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
    # The email folded for comparison (Unicode NFKC, case-folded): unique.
    Column("email_key", String(320), nullable=False, unique=True),
    # Lower case, 3-32 of [a-z0-9_.-] (heron_auth.profile): unique.
    Column("username", String(32), nullable=False, unique=True),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("role", String(64), ForeignKey("roles.name"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    # None: whatever the creator may do at the time of use.
    Column("permissions", JSON, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_api_tokens_user", "user_id"),
)

# A session is the family of tokens one sign-in (or one API token exchange) produced; its id is
# the `sid` claim of every access token it issued, so revoking it revokes them all.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column(
        "api_token_id",
        String(36),
        ForeignKey("api_tokens.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    # SHA-256 of the session's CSRF token (cookie sessions); access tokens carry it as `csrf`.
    Column("csrf_hash", String(64), nullable=True),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_api_token", "api_token_id"),
    Index("ix_sessions_expires", "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # Set when the token was exchanged for a new one; a second use is a reuse.
    Column("used_at", BigInteger, nullable=True),
    Index("ix_refresh_tokens_session", "session_id"),
)

# Addresses an account signed in from successfully (hashed): while the account is under a
# distributed guessing attack, its owner still gets in from one of them.
sign_in_addresses = Table(
    "sign_in_addresses",
    metadata,
    Column(
        "user_id",
        String(36),
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("address_hash", String(64), primary_key=True),
    Column("last_seen_at", BigInteger, nullable=False),
)

# Sessions revoked while some of their access tokens may still be unexpired; verifiers poll it.
revocations = Table(
    "revocations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(36), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_revocations_expires", "expires_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # A retired key signs nothing new and stays published until its last token expired.
    Column("retired_at", BigInteger, nullable=True),
)

# After-events waiting for the relay (heron_common.outbox).
outbox = outbox_table(metadata)
