"""Slugs: URL-safe item names derived from titles."""

from __future__ import annotations

import re
import unicodedata

MAX_SLUG_LENGTH = 200
_SEPARATORS = re.compile(r"[\W_]+")


def slugify(text: str) -> str:
    """'Café au lait!' -> 'cafe-au-lait'. Letters of non-Latin scripts are kept as they are."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    slug = _SEPARATORS.sub("-", unicodedata.normalize("NFC", without_marks).lower()).strip("-")
    return slug[:MAX_SLUG_LENGTH].rstrip("-")


def is_valid_slug(slug: str) -> bool:
    return bool(slug) and slugify(slug) == slug


def next_free_slug(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`… whichever is first not taken."""
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_SLUG_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1
