"""What the media scenarios send: text bodies streamed in chunks, photo-like JPEGs, uploads and
deletes through the public API (as setup, never timed), and what rendering a variant costs
with the media service's own code in the bench's process.
"""

from __future__ import annotations

import functools
import io
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.errors import BenchError

MiB = 1024 * 1024
UPLOAD_PATH = "/api/media/upload/{filename}?allow_duplicate=true"
RENDER_SAMPLES = 5


def _text_block() -> bytes:
    """1 MiB of plain ASCII lines: `text/plain` to the media service's sniffer (no signature,
    no markup, no control characters), and free to send again and again."""
    line = "heron bench line {:07d}: the heron stands in the shallows, waiting for a fish.\n"
    lines, size, n = [], 0, 0
    while size < MiB:
        encoded = line.format(n).encode()
        lines.append(encoded)
        size += len(encoded)
        n += 1
    return b"".join(lines)[:MiB]


TEXT_BLOCK = _text_block()


def text_body(n: int, size: int) -> Iterator[bytes]:
    """`size` bytes of text in chunks of 1 MiB, streamed so that the client holds one chunk at
    a time; the first line names upload `n`, so no two uploads have the same bytes."""
    head = f"Heron bench upload {n:08d}\n".encode()[:size]
    yield head
    left = size - len(head)
    while left > 0:
        chunk = TEXT_BLOCK if left >= len(TEXT_BLOCK) else TEXT_BLOCK[:left]
        left -= len(chunk)
        yield chunk


@functools.cache
def photo_jpeg(width: int, height: int, quality: int) -> bytes:
    """A JPEG that compresses like a photograph (smooth colour areas, a vignette, fine grain),
    not like flat colour or pure noise: 4000x3000 at quality 90 is about 4 MB, as a phone's
    12-megapixel photo is. Made once per size (about a second at 12 megapixels)."""
    from PIL import Image, ImageChops

    resample = Image.Resampling.BICUBIC
    channels = [
        Image.effect_noise((width // cell + 1, height // cell + 1), 90).resize(
            (width, height), resample
        )
        for cell in (64, 48, 80)
    ]
    areas = Image.merge("RGB", channels)
    vignette = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    grain = Image.effect_noise((width, height), 12).convert("RGB")
    image = ImageChops.add(ImageChops.blend(areas, vignette, 0.35), grain, offset=-20)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload(
    base_url: str, token: str | None, filename: str, body: bytes, content_type: str
) -> dict[str, Any]:
    """Store `body` through the raw-body upload route (duplicates stored too); its metadata,
    whose `url` is the file's delivery path."""
    reply = httpx.put(
        f"{base_url}{UPLOAD_PATH.format(filename=filename)}",
        content=body,
        headers={**_auth(token), "Content-Type": content_type},
        timeout=120,
    )
    if reply.status_code != 201:
        raise BenchError(f"uploading {filename}: {reply.status_code} {reply.text[:200]}")
    data: dict[str, Any] = reply.json()["data"]
    return data


def delete(base_url: str, token: str | None, media_id: str) -> None:
    """Delete a file the scenario stored (with its variants), so the disk does not fill."""
    reply = httpx.delete(f"{base_url}/api/media/{media_id}", headers=_auth(token), timeout=30)
    if reply.status_code != 200:
        raise BenchError(f"deleting media {media_id}: {reply.status_code} {reply.text[:200]}")


def cache_note(base_url: str, path: str, headers: dict[str, str]) -> str:
    """Whether the gateway's response cache answers `path` (asked twice): the delivery
    scenarios measure whichever path answers, and say which."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(2):
            reply = client.get(path)
            if not reply.is_success:
                raise BenchError(f"GET {path} answered {reply.status_code}: {reply.text[:200]}")
    if reply.headers.get("x-cache-status", "").upper() == "HIT":
        return "served from the gateway's cache (X-Cache-Status: HIT)"
    return "not from the gateway's cache: every request reads the media service"


def render_ms(jpeg: bytes, width: int, format: str) -> float:
    """The median time the media service's own `render` takes for this variant of `jpeg`
    (decode, resize, encode), in the bench's process: what a first request cannot avoid."""
    from heron_media.settings import MediaSettings
    from heron_media.variants import Spec, render

    fields = MediaSettings.model_fields
    # What the service makes of `?w=<width>&format=<format>` (its spec_of): no height, so
    # `inside`, at the default quality.
    spec = Spec(
        width=width,
        height=0,
        fit="inside",
        format=format,
        quality=fields["variant_quality"].default,
    )
    max_pixels = fields["image_max_pixels"].default
    times = []
    for _ in range(RENDER_SAMPLES):
        started = time.perf_counter()
        render(io.BytesIO(jpeg), "image/jpeg", spec, max_pixels)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)
