"""Taking the GPS position out of an image's EXIF block, in place, before it is stored.

A photo's EXIF often says where it was taken; a CMS that publishes it publishes its author's
home. The block is found in the file's first bytes (JPEG's APP1 segment, PNG's eXIf chunk,
WebP's EXIF chunk: each comes before the image data), read with Pillow, written again without
its GPS directory and padded with zeros to its old length, so that nothing else in the file
moves (no length or offset elsewhere changes, and the pixels are untouched, not re-encoded).
A block that does not come entirely within those first bytes is left as it is.
"""

from __future__ import annotations

import logging
import struct
import zlib

logger = logging.getLogger("heron.media")

GPS_IFD = 0x8825
_PREFIX = b"Exif\x00\x00"


def strip_gps(mime_type: str, head: bytes) -> bytes:
    """`head` (the file's first bytes) with any GPS data removed from its EXIF block."""
    try:
        if mime_type == "image/jpeg":
            return _jpeg(head)
        if mime_type == "image/png":
            return _png(head)
        if mime_type == "image/webp":
            return _webp(head)
    except Exception:  # a malformed block is kept as is: the upload's own checks judge it
        logger.warning("could not read an image's EXIF block", exc_info=True)
    return head


def _without_gps(block: bytes) -> bytes | None:
    """The EXIF block (with or without its `Exif\\0\\0` prefix) without GPS data, as long as
    the original; None when it has none."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(block if block.startswith(_PREFIX) else _PREFIX + block)
    if GPS_IFD not in exif:
        return None
    del exif[GPS_IFD]
    rebuilt = exif.tobytes()
    if not block.startswith(_PREFIX):
        rebuilt = rebuilt[len(_PREFIX) :]
    if len(rebuilt) > len(block):
        # Never longer in practice; if so, an empty block takes its place.
        empty = Image.Exif().tobytes()
        rebuilt = empty if block.startswith(_PREFIX) else empty[len(_PREFIX) :]
    return rebuilt + b"\x00" * (len(block) - len(rebuilt))


def _jpeg(head: bytes) -> bytes:
    at = 2  # after SOI
    while at + 4 <= len(head) and head[at] == 0xFF:
        marker = head[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        if marker == 0xDA:  # start of scan: the metadata is behind us
            break
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        end = at + 2 + length
        if marker == 0xE1 and head[at + 4 : at + 10] == _PREFIX and end <= len(head):
            rebuilt = _without_gps(head[at + 4 : end])
            if rebuilt is not None:
                head = head[: at + 4] + rebuilt + head[end:]
        at = end
    return head


def _png(head: bytes) -> bytes:
    at = 8  # after the signature
    while at + 12 <= len(head):
        (length,) = struct.unpack(">I", head[at : at + 4])
        kind = head[at + 4 : at + 8]
        end = at + 12 + length
        if kind == b"eXIf" and end <= len(head):
            rebuilt = _without_gps(head[at + 8 : at + 8 + length])
            if rebuilt is not None:
                crc = struct.pack(">I", zlib.crc32(kind + rebuilt))
                head = head[: at + 8] + rebuilt + crc + head[end:]
        if kind in (b"IDAT", b"IEND"):
            break
        at = end
    return head


def _webp(head: bytes) -> bytes:
    at = 12  # after RIFF, size, WEBP
    while at + 8 <= len(head):
        kind = head[at : at + 4]
        (length,) = struct.unpack("<I", head[at + 4 : at + 8])
        end = at + 8 + length + (length & 1)
        if kind == b"EXIF" and at + 8 + length <= len(head):
            rebuilt = _without_gps(head[at + 8 : at + 8 + length])
            if rebuilt is not None:
                head = head[: at + 8] + rebuilt + head[at + 8 + length :]
        at = end
    return head
