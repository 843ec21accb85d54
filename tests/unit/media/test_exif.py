"""The GPS position leaves an image's EXIF block in place; nothing else of the file changes."""

from __future__ import annotations

import io

import pytest
from heron_media.exif import GPS_IFD, strip_gps
from PIL import Image

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _photo(format: str, gps: bool) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Heron Camera"
    exif[0x0112] = 6
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 7.5), 3: "E", 4: (4.0, 53.0, 1.2)}
    out = io.BytesIO()
    Image.effect_noise((64, 48), 40).convert("RGB").save(out, format, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("format", list(FORMATS))
def test_the_gps_position_is_removed_and_the_rest_kept(format: str) -> None:
    original = _photo(format, gps=True)
    assert GPS_IFD in Image.open(io.BytesIO(original)).getexif()
    stripped = strip_gps(FORMATS[format], original)
    assert len(stripped) == len(original)
    image = Image.open(io.BytesIO(stripped))
    exif = image.getexif()
    assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)
    assert (exif[0x010F], exif[0x0112]) == ("Heron Camera", 6)
    image.load()  # still a whole, decodable image
    assert image.tobytes() == Image.open(io.BytesIO(original)).tobytes()


@pytest.mark.parametrize("format", list(FORMATS))
def test_an_image_without_a_position_is_untouched(format: str) -> None:
    original = _photo(format, gps=False)
    assert strip_gps(FORMATS[format], original) == original


def test_a_damaged_block_is_left_to_the_other_checks() -> None:
    damaged = b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*garbage"
    assert strip_gps("image/jpeg", damaged) == damaged
