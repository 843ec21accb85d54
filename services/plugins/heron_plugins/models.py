"""Plugin tables (SQLAlchemy Core): each installed plugin's state and settings, the log of
every change made to a plugin, and the after-events received from the services' outboxes."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

JsonDocument = JSON().with_variant(JSONB(), "postgresql")

# A plugin has a row once installed: `active` or `inactive` (installed and not active).
plugins = Table(
    "plugins",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("version", String(64), nullable=False),
    Column("settings", JsonDocument, nullable=False),
    Column("installed_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

plugin_activity = Table(
    "plugin_activity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plugin", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_plugin_activity_plugin", "plugin", "id"),
)

# Each after-event once (by its id), in the order received; `handled_at` once every active
# plugin's handler of it has run. Handled events are kept a while: a relay that sends a batch
# again (after a crash between its delivery and its delete) finds their ids here.
events = Table(
    "events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("id", String(36), nullable=False, unique=True),
    Column("event", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("handled_at", BigInteger, nullable=True),
    Index("ix_events_pending", "handled_at", "seq"),
)
