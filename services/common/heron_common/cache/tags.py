"""How a service tells its callers which cache tags an answer depends on.

A read method sets them in its trailing metadata (`heron-cache-tags`, comma-separated); the
gateway stores a cached page under those tags, so the writes that invalidate them (after their
commit, over the bus) drop the page too. The gateway never guesses a service's tags.
"""

from __future__ import annotations

from collections.abc import Iterable

TAGS_METADATA_KEY = "heron-cache-tags"


def tags_metadata(tags: Iterable[str]) -> tuple[tuple[str, str]]:
    return ((TAGS_METADATA_KEY, ",".join(tags)),)


def tags_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[str] | None:
    """The tags in a call's trailing metadata; None when the service did not name any (its
    answer must then not be cached)."""
    for key, value in metadata or ():
        if key == TAGS_METADATA_KEY:
            text = value.decode() if isinstance(value, bytes) else value
            return [tag for tag in text.split(",") if tag] or None
    return None


# A media file's tag: what content and media writes invalidate when the file, or whether it
# is public, changes (answers that show the file carry it).
MEDIA_TAG = "media:"
PUBLIC_MEDIA_TAG = "media:published"
"""On every file answer an anonymous caller gets: a change that may stop any file from being
published at once (a collection's schema refitted) invalidates them all."""


def media_tags(ids: Iterable[str]) -> list[str]:
    return [f"{MEDIA_TAG}{i}" for i in sorted(ids)]
