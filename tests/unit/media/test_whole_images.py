"""A stored image must end where its format ends it: one cut short is refused at upload."""

from __future__ import annotations

import io
import random

import pytest
from heron_media.service import TAIL_BYTES, image_is_whole
from PIL import Image

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def _noise(format: str) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (64, 48), bytes(rng.randrange(256) for _ in range(64 * 48 * 3)))
    out = io.BytesIO()
    image.save(out, format)
    return out.getvalue()


def _whole(data: bytes, mime_type: str) -> bool:
    return image_is_whole(mime_type, data[:16], data[-TAIL_BYTES:], len(data))


@pytest.mark.parametrize("format", list(FORMATS))
def test_a_whole_image_passes_and_a_cut_one_does_not(format: str) -> None:
    data = _noise(format)
    assert _whole(data, FORMATS[format])
    for cut in (len(data) // 2, len(data) - 1, len(data) - 3):
        assert not _whole(data[:cut], FORMATS[format]), cut


def test_a_jpeg_padded_after_its_end_passes() -> None:
    assert _whole(_noise("JPEG") + b"\x00" * 8, "image/jpeg")
