"""Slugs: URL-safe item names derived from titles."""

from __future__ import annotations

import secrets
import unicodedata

from heron_common.limits import MAX_SLUG_LENGTH

# One rule for every slug (an item's, and a `slug` field's value): words of lowercase letters,
# of any script, and digits, joined by single hyphens; NFC, at most MAX_SLUG_LENGTH long.
# `cafe`, `café`, `日本`, `привет-мир` and `2024-recap` are slugs; `Café`, `a--b`, `a_b` are not.
_WORD_CATEGORIES = frozenset("LMN")  # letters, their marks, digits


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in _WORD_CATEGORIES


def slugify(text: str) -> str:
    """'Café au lait!' -> 'cafe-au-lait': accents come off Latin letters, letters of other
    scripts are kept as they are, anything else separates words."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue  # the accent of a Latin letter
        kept.append(char)
    folded = unicodedata.normalize("NFC", "".join(kept)).lower()
    words = "".join(c if _is_word_char(c) else " " for c in folded).split()
    slug = "-".join(words)[:MAX_SLUG_LENGTH].rstrip("-")
    return slug


def is_valid_slug(slug: str) -> bool:
    if not slug or len(slug) > MAX_SLUG_LENGTH or slug != slug.lower():
        return False
    if not unicodedata.is_normalized("NFC", slug):
        return False
    words = slug.split("-")
    return all(word and all(_is_word_char(c) for c in word) for word in words)


def slug_advice(slug: str) -> str:
    """What to tell a writer whose slug is not one (the same words for every slug)."""
    suggestion = slugify(slug) or "my-item"
    return (
        "use lowercase letters (of any script) and digits, with single hyphens between "
        f"words, e.g. {suggestion!r}"
    )


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
