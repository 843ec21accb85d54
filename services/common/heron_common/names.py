"""What a file or folder name may hold, as one rule for the service that checks it and for the
API description that documents it (so a fuzzer reading the description sends no name that the
service would refuse, and every name the description refuses is refused).

A name never holds a slash or backslash, a control character, an invisible formatting
character (Unicode categories Cc, Cf, Zl, Zp, and lone surrogates: bidirectional overrides,
zero-width joiners, soft hyphens, ...), which could make a name read as another, or break the
headers it is sent in. A name is not `.` or `..`; a folder name does not start with a dot.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# Every code point of the categories above (Unicode 14, Python 3.11's), and the two slashes;
# `forbidden()` also asks unicodedata, so a later Unicode's new format characters count too.
# Lone surrogates are left out of the pattern (regex engines refuse them, and UTF-8 text cannot
# carry them); `forbidden()` refuses them.
_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x002F, 0x002F), (0x005C, 0x005C), (0x007F, 0x009F),
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escaped(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


# The character class of what a name may hold (ECMAScript and Python regex alike).
ALLOWED = (
    "[^"
    + "".join(_escaped(a) if a == b else f"{_escaped(a)}-{_escaped(b)}" for a, b in _RANGES)
    + "]"
)
_NOT_DOT = ALLOWED[:-1] + "\\u002e]"

FILENAME_PATTERN = f"^(?:{_NOT_DOT}|\\.{_NOT_DOT}|\\.\\.{ALLOWED}){ALLOWED}*$"
"""A filename: at least one allowed character, and not `.` or `..`."""

FOLDER_PATTERN = f"^(?:/{_NOT_DOT}{ALLOWED}{{0,99}}){{0,20}}/?$"
"""`/`, `` (no folder) or `/a/b`: up to 20 folder names of 1 to 100 characters."""

_FOLDER = re.compile(FOLDER_PATTERN)


def forbidden(text: str) -> bool:
    """Whether `text` holds a character no name may hold."""
    return any(c in "/\\" or unicodedata.category(c) in _CATEGORIES for c in text)


def is_folder(text: str) -> bool:
    return bool(_FOLDER.match(text))


def file_path(media_id: str, filename: str) -> str:
    """Where the gateway serves a media file: `/files/<id>/<its name, URL-quoted>`."""
    return f"/files/{media_id}/{quote(filename, safe='')}"
