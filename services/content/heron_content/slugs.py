"""Slugs: URL-safe item names derived from titles."""

from __future__ import annotations

import re
import secrets
import unicodedata

from heron_common.limits import MAX_SLUG_LENGTH

_SEPARATORS = re.compile(r"[\W_]+")


def slugify(text: str) -> str:
    """'Café au lait!' -> 'cafe-au-lait'. Letters of non-Latin scripts are kept as they are."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    slug = _SEPARATORS.sub("-", unicodedata.normalize("NFC", without_marks).lower()).strip("-")
    return slug[:MAX_SLUG_LENGTH].rstrip("-")


def is_valid_slug(slug: str) -> bool:
    return bool(slug) and slugify(slug) == slug


def slug_advice(slug: str) -> str:
    """What to tell a writer whose slug is not one."""
    suggestion = slugify(slug) or "my-item"
    return f"use lowercase letters, digits and hyphens only, e.g. {suggestion!r}"


CANDIDATES = 20


def _with_suffix(base: str, suffix: str) -> str:
    return base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix


def slug_candidates(base: str) -> list[str]:
    """`base`, `base-2` … `base-20`: the slugs tried, in order, for a derived slug."""
    return [base, *(_with_suffix(base, f"-{n}") for n in range(2, CANDIDATES + 1))]


def next_free_slug(base: str, taken: set[str]) -> str:
    """The first free candidate; past twenty namesakes, `base-<random>` (checked by the unique
    index like any other slug)."""
    for candidate in slug_candidates(base):
        if candidate not in taken:
            return candidate
    return random_slug(base)


def random_slug(base: str) -> str:
    """`base-<8 hex digits>`: for when the numbered candidates are taken or contended."""
    return _with_suffix(base, f"-{secrets.token_hex(4)}")
