"""Plugin tables (SQLAlchemy Core): each installed plugin's state and settings, and the log of
every change made to a plugin."""

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
