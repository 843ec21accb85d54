"""Content tables (SQLAlchemy Core): collections and items."""

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
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

JsonDocument = JSON().with_variant(JSONB(), "postgresql")

collections = Table(
    "collections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("schema", JsonDocument, nullable=False),
    Column("managed", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Bumped by every change of the collection.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    # The file of HERON_CONTENT_COLLECTIONS_DIR that defines it ("": the API does).
    Column("source", String(300), nullable=False, default="", server_default=""),
)

items = Table(
    "items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "collection_id",
        String(36),
        ForeignKey("collections.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("title", String(500), nullable=False),
    Column("slug", String(200), nullable=False),
    Column("data", JsonDocument, nullable=False),
    Column("status", String(20), nullable=False, default="draft"),
    Column("author_id", String(64), nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("published_at", BigInteger, nullable=True),
    Column("idempotency_key", String(128), nullable=True, unique=True),
    # sha256 of the create request the key was first used with; a reuse must match it.
    Column("idempotency_fingerprint", String(64), nullable=True),
    # The title and text fields' values, for full-text search (heron_content.search).
    Column("search_text", Text, nullable=False, default="", server_default=""),
    # Scheduled publishing (heron_content.scheduler): when the item goes public or back to
    # draft by itself, who scheduled it under which role, and how the last try went.
    Column("publish_at", BigInteger, nullable=True),
    Column("unpublish_at", BigInteger, nullable=True),
    Column("scheduled_by", String(64), nullable=False, default="", server_default=""),
    Column("scheduled_role", String(64), nullable=False, default="", server_default=""),
    Column("schedule_error", Text, nullable=False, default="", server_default=""),
    Column("schedule_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("schedule_retry_at", BigInteger, nullable=True),
    UniqueConstraint("collection_id", "slug", name="uq_items_collection_slug"),
    Index("ix_items_collection_created", "collection_id", "created_at", "id"),
    Index("ix_items_created", "created_at", "id"),
    Index(
        "ix_items_publish_at",
        "publish_at",
        postgresql_where=text("publish_at IS NOT NULL"),
        sqlite_where=text("publish_at IS NOT NULL"),
    ),
    Index(
        "ix_items_unpublish_at",
        "unpublish_at",
        postgresql_where=text("unpublish_at IS NOT NULL"),
        sqlite_where=text("unpublish_at IS NOT NULL"),
    ),
)

# One row per value of a field marked `unique` (its SHA-256 over canonical JSON): the primary
# key makes the database refuse a second item with the same value in the same collection.
item_unique_values = Table(
    "item_unique_values",
    metadata,
    Column(
        "collection_id",
        String(36),
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("field", String(64), nullable=False),
    Column("value_key", String(64), nullable=False),
    Column("item_id", String(36), ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("collection_id", "field", "value_key", name="pk_item_unique_values"),
    Index("ix_item_unique_values_item", "item_id"),
)

# One row per media file an item uses (heron_content.media_refs): which files published items
# use is what the media service asks before it serves one to an anonymous caller.
item_media = Table(
    "item_media",
    metadata,
    Column("item_id", String(36), ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("media_id", String(36), nullable=False),
    PrimaryKeyConstraint("item_id", "media_id", name="pk_item_media"),
    Index("ix_item_media_media", "media_id"),
)

# One row per change of an item (create, update, restore): its content at that version, who
# made the change and when. The newest `HERON_CONTENT_REVISIONS_PER_ITEM` are kept.
item_revisions = Table(
    "item_revisions",
    metadata,
    Column("item_id", String(36), ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("title", String(500), nullable=False),
    Column("slug", String(200), nullable=False),
    Column("data", JsonDocument, nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("item_id", "version", name="pk_item_revisions"),
)

# After-events waiting for the relay (heron_common.outbox).
outbox = outbox_table(metadata)
