"""The webhooks plugin's own tables (created by its migrations when it is installed, dropped
when it is uninstalled): endpoints, the durable queue of deliveries, and every attempt."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

Seq = BigInteger().with_variant(Integer, "sqlite")

endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("collections", JSON, nullable=False),
    Column("description", String(500), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=False),
    Column("failures_in_a_row", Integer, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One per endpoint and event (so an event reaches an endpoint once), in the order the events
# came: `pending` until a 2xx answer (`delivered`) or its last attempt (`failed`).
deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_queue", "endpoint_id", "status", "seq"),
)

attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("error", Text, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)
