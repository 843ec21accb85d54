"""What a file is, told by its first bytes: never by the client's claim or the name's extension.

Binary formats are recognised by their signatures (the `filetype` library: pure Python, no
libmagic to install). What has no signature is read as text: markup that a browser would run
(HTML, SVG, XML, PHP) is named as such, so the allowlist can refuse it; anything else that is
valid UTF-8 without control characters is `text/plain`; the rest is `application/octet-stream`.
"""

from __future__ import annotations

import codecs
import re

import filetype  # type: ignore[import-untyped]

HEAD_BYTES = 128 * 1024
"""How much of a file is read before deciding what it is (signatures need a few KB; image
headers with large metadata blocks need more)."""

# filetype's names → the registered (or commonly served) ones.
_CANONICAL = {
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "video/quicktime": "video/quicktime",
    "application/x-pdf": "application/pdf",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
}

# Leading markup that makes text something a browser or a server would execute.
_MARKUP = (
    (re.compile(rb"<\?php", re.IGNORECASE), "application/x-php"),
    (re.compile(rb"<svg[\s>/]", re.IGNORECASE), "image/svg+xml"),
    (
        re.compile(
            rb"<(!doctype\s+html|html|head|body|script|iframe|object|embed|meta|link|style|"
            rb"img|a|div|form|title|base)[\s>/]",
            re.IGNORECASE,
        ),
        "text/html",
    ),
    (re.compile(rb"<\?xml", re.IGNORECASE), "application/xml"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def canonical(media_type: str) -> str:
    """`media_type` lowercased, without parameters, by its usual name."""
    bare = media_type.split(";", 1)[0].strip().lower()
    return _CANONICAL.get(bare, bare)


def sniff(head: bytes) -> str:
    """The media type of a file starting with `head` (its first `HEAD_BYTES`, or all of it)."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return canonical(kind.mime)
    text = _as_text(head)
    if text is None:
        return "application/octet-stream"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n\f")
    for pattern, media_type in _MARKUP:
        # Markup anywhere near the start counts: browsers sniff past leading text.
        if pattern.search(start[:4096]):
            return media_type
    return "text/plain"


def _as_text(head: bytes) -> str | None:
    """`head` as UTF-8 text with no control characters, or None (a character cut by the end
    of the head is not an error)."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text
