"""The content API's bounds, in one place: the content service enforces them and the gateway
states them (in its request validation and its OpenAPI document), from these same numbers."""

from __future__ import annotations

# Item statuses, in their life-cycle order.
ITEM_STATUSES: tuple[str, ...] = ("draft", "review", "published", "archived")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31 - 1
# The users API pages as SonicJS's does; an item's history in shorter pages.
DEFAULT_USERS_PAGE_SIZE = 50
MAX_USERS_PAGE_SIZE = 1000
DEFAULT_REVISIONS_PAGE_SIZE = 20
MAX_REVISIONS_PAGE_SIZE = 100
MAX_TITLE_LENGTH = 500
MAX_SLUG_LENGTH = 200
MAX_COLLECTION_NAME_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
