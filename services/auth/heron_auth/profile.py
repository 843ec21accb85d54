"""The parts of an account a person chooses: username, first and last name, display name.

Usernames are SonicJS's: unique, case-insensitive (stored in lower case), 3 to 32 of
`[a-z0-9_.-]`; one not given is derived from the email's local part.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from heron_common.errors import ErrorDetail, validation_failed
from heron_common.jsondoc import check_text

USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")
USERNAME_RULE = "3 to 32 characters of a-z, 0-9, '_', '.' and '-'"
MAX_NAME_LENGTH = 100
# Not for self-registration: a stranger must not look like the operator.
RESERVED_USERNAMES = frozenset(
    {"admin", "administrator", "root", "system", "heron", "support", "security", "anonymous"}
)


@dataclass(frozen=True)
class Profile:
    """What a create or update sets; None leaves a value as it is (or derives it)."""

    display_name: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


def check_username(value: str) -> str:
    """The username as stored (lower case), or a 400 naming the rule."""
    name = value.strip().lower()
    if not USERNAME.fullmatch(name):
        raise validation_failed(
            f"the username must be {USERNAME_RULE}.", [ErrorDetail("username", USERNAME_RULE)]
        )
    return name


def check_name(value: str, field: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A name as stored (trimmed), or a 400 naming the field."""
    check_text(value, field)
    value = value.strip()
    if len(value) > max_length:
        raise validation_failed(
            f"{field} is too long.", [ErrorDetail(field, f"at most {max_length} characters")]
        )
    return value


def derived_username(email: str) -> str:
    """A valid username from an email's local part: `Jane.Doe+cms@…` → `jane.doe`."""
    local = email.split("@", 1)[0].split("+", 1)[0]
    ascii_only = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_.-]+", "", ascii_only.lower())[:32]
    if len(name) < 3:
        name = f"user_{name}" if name else "user"
    return name


def username_candidates(base: str, *, allow_reserved: bool = False) -> Iterator[str]:
    """`base`, then `base2`, `base3`, …, then random suffixes: the first free one is taken."""
    if allow_reserved or base not in RESERVED_USERNAMES:
        yield base
    for n in range(2, 50):
        suffix = str(n)
        yield base[: 32 - len(suffix)] + suffix
    while True:
        suffix = "_" + secrets.token_hex(3)
        yield base[: 32 - len(suffix)] + suffix
