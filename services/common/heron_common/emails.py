"""The email address rule every service applies alike: what is valid, how it is stored, and
the key that compares two spellings of one address."""

from __future__ import annotations

import re
import unicodedata

from heron_common.errors import ErrorDetail, InvalidArgument, validation_failed

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL_LENGTH = 254


def normalize_email(email: str, field: str = "email") -> tuple[str, str]:
    """(email as stored, comparison key): NFKC-normalized and in lower case, and case-folded
    for the key. A `Validation failed` 400 naming `field` when it is not an address."""
    normalized = unicodedata.normalize("NFKC", email).strip().lower()
    if (
        len(normalized) > MAX_EMAIL_LENGTH
        or not EMAIL.fullmatch(normalized)
        or not normalized.isprintable()
    ):
        raise validation_failed(
            "the email address is not valid.", [ErrorDetail(field, "a valid email address")]
        )
    return normalized, normalized.casefold()


def account_key(email: str) -> str:
    """One rate-limit key per account whatever the spelling, valid address or not."""
    try:
        return normalize_email(email)[1]
    except InvalidArgument:
        return unicodedata.normalize("NFKC", email).strip().casefold()[:MAX_EMAIL_LENGTH]
