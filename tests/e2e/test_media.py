"""Media through the gateway, on local storage (SQLite) and on S3 (moto's server, PostgreSQL):
upload, list, deliver (Range, 304), update, delete; hostile uploads leave nothing behind."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import httpx
import pytest
from PIL import Image

from tests.conftest import throwaway_database
from tests.e2e.conftest import Stack, s3_env, start_stack

MiB = 1024 * 1024
BUCKET = "heron-test-media"
LIMITS = {
    "HERON_MEDIA_MAX_FILE_BYTES": str(24 * MiB),
    "HERON_MEDIA_PART_SIZE_BYTES": str(5 * MiB),
    "HERON_GATEWAY_MEDIA_MAX_REQUEST_BYTES": str(32 * MiB),
    "HERON_GATEWAY_MEDIA_MAX_PARTS": "6",
    "HERON_GATEWAY_MEDIA_MAX_FILES": "4",
}


@dataclass
class Media:
    """A stack, and a way to look behind its back at the media rows and stored objects."""

    stack: Stack
    kind: str
    s3: Any = None
    data_dir: Path | None = None

    def rows(self) -> list[tuple[str, str]]:
        """(id, state) of every media row, whatever its state."""
        url = self.stack.media.env.get("HERON_MEDIA_DATABASE_URL", "")
        if not url:
            assert self.data_dir is not None
            with sqlite3.connect(self.data_dir / "media.db") as db:
                return [tuple(r) for r in db.execute("SELECT id, state FROM media")]

        async def run() -> list[tuple[str, str]]:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                return [tuple(r) for r in await conn.fetch("SELECT id, state FROM media")]
            finally:
                await conn.close()

        import asyncio

        return asyncio.run(run())

    def objects(self) -> list[str]:
        """Every stored object (S3 keys, or files under the local media directory)."""
        if self.s3 is not None:
            listed = self.s3.list_objects_v2(Bucket=BUCKET)
            return [o["Key"] for o in listed.get("Contents", [])]
        assert self.data_dir is not None
        root = self.data_dir / "media"
        return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

    def multipart_uploads(self) -> list[str]:
        if self.s3 is None:
            return []
        listed = self.s3.list_multipart_uploads(Bucket=BUCKET)
        return [u["Key"] for u in listed.get("Uploads", [])]


def _s3(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="module", params=["local", "s3"])
def media(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Media]:
    tmp = tmp_path_factory.mktemp(f"media-{request.param}")
    if request.param == "local":
        running = start_stack(tmp, seed=False, extra_env=LIMITS)
        yield Media(running, "local", data_dir=tmp)
        running.stop()
        return
    url = request.getfixturevalue("moto_url")
    s3 = _s3(url)
    s3.create_bucket(Bucket=BUCKET)
    server = request.getfixturevalue("postgres_server_url")
    with throwaway_database(server) as content_url, throwaway_database(server) as media_url:
        running = start_stack(
            tmp,
            content_url,
            seed=False,
            media_database_url=media_url,
            # Production's shape: invalidations travel over Redis.
            extra_env={
                **LIMITS,
                **s3_env(url, BUCKET),
                "HERON_REDIS_URL": request.getfixturevalue("redis_url"),
            },
        )
        yield Media(running, "s3", s3=s3, data_dir=tmp)
        running.stop()


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def _upload(client: httpx.Client, name: str, body: bytes, claimed: str, **fields: str) -> Any:
    return client.post(
        "/api/media/upload", files={"file": (name, body, claimed)}, data=fields or None
    )


def _nothing_left(m: Media, before_rows: int, before_objects: int) -> None:
    assert len(m.rows()) == before_rows
    assert len(m.objects()) == before_objects
    assert m.multipart_uploads() == []
    partial = (m.data_dir or Path("/nonexistent")) / "media" / ".partial"
    assert not partial.exists() or list(partial.iterdir()) == []


def test_upload_list_deliver_update_delete(media: Media) -> None:
    client = media.stack.client
    objects_before = len(media.objects())
    image = png(color=(10, 120, 200))
    reply = _upload(client, "heron.png", image, "image/png", folder="/birds/2026", alt="A heron")
    assert reply.status_code == 201, reply.text
    (made,) = reply.json()["data"]
    assert made["mime_type"] == "image/png"
    assert (made["width"], made["height"], made["size"]) == (40, 30, len(image))
    assert made["folder"] == "/birds/2026" and made["alt"] == "A heron"
    assert made["url"] == f"/files/{made['id']}/heron.png"

    listed = client.get("/api/media", params={"folder": "/birds", "recursive": "true"}).json()
    assert [m["id"] for m in listed["data"]] == [made["id"]]
    assert client.get("/api/media", params={"folder": "/birds"}).json()["data"] == []
    assert client.get("/api/media", params={"type": "application/"}).json()["data"] == []
    found = client.get("/api/media", params={"search": "HERON", "type": "image/"}).json()
    assert [m["id"] for m in found["data"]] == [made["id"]]

    # Delivery, whole, conditional and by range: to a signed-in reader, since no published
    # item uses the file (test_media_privacy: then anyone may read it).
    assert media.stack.anon.get(made["url"]).status_code == 404
    whole = client.get(made["url"])
    assert whole.status_code == 200
    assert whole.content == image
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in whole.headers["content-security-policy"]
    assert whole.headers["content-disposition"].startswith("inline;")
    assert whole.headers["cache-control"] == "private, max-age=31536000, immutable"
    etag = whole.headers["etag"]
    assert client.get(made["url"], headers={"if-none-match": etag}).status_code == 304
    part = client.get(made["url"], headers={"range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == image[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(image)}"
    tail = client.get(made["url"], headers={"range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, image[-5:])
    past = client.get(made["url"], headers={"range": f"bytes={len(image) + 10}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(image)}"

    # A variant: made once, then served as stored.
    asked = {"w": "32", "h": "32", "fit": "cover", "format": "webp"}
    variant = client.get(made["url"], params=asked)
    assert variant.status_code == 200, variant.text
    assert variant.headers["content-type"] == "image/webp"
    assert variant.headers["content-disposition"].startswith("inline;")
    assert "heron.webp" in variant.headers["content-disposition"]
    assert Image.open(io.BytesIO(variant.content)).size == (32, 32)
    again = client.get(made["url"], params=asked)
    assert (again.content, again.headers["etag"]) == (variant.content, variant.headers["etag"])
    conditional = client.get(
        made["url"], params=asked, headers={"if-none-match": again.headers["etag"]}
    )
    assert conditional.status_code == 304
    assert len(media.objects()) == objects_before + 2  # the original and its variant

    changed = client.patch(f"/api/media/{made['id']}", json={"alt": "Two herons", "version": 1})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["data"]["alt"], changed.json()["data"]["version"]) == ("Two herons", 2)
    stale = client.patch(f"/api/media/{made['id']}", json={"alt": "x", "version": 1})
    assert stale.status_code == 409
    assert client.get(f"/api/media/{made['id']}").json()["data"]["alt"] == "Two herons"

    assert client.delete(f"/api/media/{made['id']}").status_code == 200
    assert client.get(f"/api/media/{made['id']}").status_code == 404
    assert client.get(made["url"]).status_code == 404
    assert client.get(made["url"], params=asked).status_code == 404
    assert len(media.objects()) == objects_before  # the variant went with it
    assert made["id"] not in [r[0] for r in media.rows()]


def test_a_file_is_public_while_published_content_uses_it(media: Media) -> None:
    client, anon = media.stack.client, media.stack.anon
    cover = _upload(client, "cover.png", png(color=(71, 72, 73)), "image/png", alt="Old").json()
    inline = _upload(client, "inline.png", png(color=(74, 75, 76)), "image/png").json()
    notes = _upload(client, "notes.txt", b"private words\n", "text/plain").json()
    cover, inline, notes = cover["data"][0], inline["data"][0], notes["data"][0]
    name = f"posts_{os.urandom(3).hex()}"
    schema = {
        "properties": {
            "cover": {"type": "media", "accept": "image/*"},
            "body": {"type": "richtext"},
        }
    }
    assert client.post("/api/collections", json={"name": name, "schema": schema}).is_success

    def create(data: dict[str, Any]) -> httpx.Response:
        return client.post("/api/content", json={"collection": name, "title": "Post", "data": data})

    # The content service checks media fields against the media service.
    missing = create({"cover": "0b0e4f4e-8d1c-4c55-9d27-8d1f3f0c2b11"})
    assert missing.status_code == 400
    assert missing.json()["details"][0]["field"] == "data.cover"
    wrong_type = create({"cover": notes["id"]})
    assert wrong_type.status_code == 400
    assert "image/*" in wrong_type.json()["details"][0]["message"]

    body = f'<p>Look: <img src="{inline["url"]}" alt="x"></p>'
    made = create({"cover": cover["id"], "body": body})
    assert made.status_code == 201, made.text
    item = made.json()["data"]
    # A draft's files are not public: not the file, its variants or its metadata.
    for url in (cover["url"], inline["url"], f"/api/media/{cover['id']}"):
        assert anon.get(url).status_code == 404, url
    assert anon.get(cover["url"], params={"preset": "thumb"}).status_code == 404
    assert anon.get("/api/media").status_code == 401
    assert client.get(cover["url"]).status_code == 200  # signed in: every file

    assert client.post(f"/api/content/{item['id']}/publish").status_code == 200
    shown = anon.get(cover["url"])
    assert (shown.status_code, shown.content) == (200, png(color=(71, 72, 73)))
    assert shown.headers["cache-control"] == "public, max-age=31536000, immutable"
    # Served again from the gateway's memory, with the same headers a file always has.
    again = anon.get(cover["url"])
    assert (again.headers["x-cache-status"], again.content) == ("HIT", shown.content)
    for kept in ("cache-control", "etag", "content-type", "content-security-policy"):
        assert again.headers[kept] == shown.headers[kept], kept
    assert again.headers["x-content-type-options"] == "nosniff"
    unchanged = anon.get(cover["url"], headers={"if-none-match": shown.headers["etag"]})
    assert unchanged.status_code == 304
    part = anon.get(cover["url"], headers={"range": "bytes=0-3"})
    assert (part.status_code, part.content) == (206, shown.content[:4])
    assert anon.get(inline["url"]).status_code == 200  # linked from the richtext body
    assert anon.get(cover["url"], params={"preset": "thumb"}).status_code == 200
    assert anon.get(f"/api/media/{cover['id']}").json()["data"]["alt"] == "Old"
    assert anon.get(notes["url"]).status_code == 404  # no published item uses it

    # include= expands a media field into the file's URL and metadata.
    page_url = f"/api/collections/{name}/content"
    page = anon.get(page_url, params={"include": "data.cover"}).json()["data"]
    expanded = page[0]["data"]["cover"]
    assert expanded["id"] == cover["id"] and expanded["url"] == cover["url"]
    assert (expanded["mime_type"], expanded["width"], expanded["alt"]) == ("image/png", 40, "Old")
    assert anon.get(page_url).json()["data"][0]["data"]["cover"] == cover["id"]
    # A change of the file reaches the (cached) page that includes it.
    assert client.patch(f"/api/media/{cover['id']}", json={"alt": "New"}).status_code == 200
    page = anon.get(page_url, params={"include": "data.cover"}).json()["data"]
    assert page[0]["data"]["cover"]["alt"] == "New"

    # Unpublished: private again, though the gateway had it cached.
    assert client.post(f"/api/content/{item['id']}/unpublish").status_code == 200
    assert anon.get(cover["url"]).status_code == 404
    assert anon.get(inline["url"]).status_code == 404
    assert anon.get(cover["url"], params={"preset": "thumb"}).status_code == 404
    # Published again without the inline image: only the cover is public.
    changed = client.patch(f"/api/content/{item['id']}", json={"data": {"body": "<p>None</p>"}})
    assert changed.status_code == 200, changed.text
    assert client.post(f"/api/content/{item['id']}/publish").status_code == 200
    assert anon.get(cover["url"]).status_code == 200
    assert anon.get(inline["url"]).status_code == 404
    assert client.delete(f"/api/content/{item['id']}").status_code == 200
    assert anon.get(cover["url"]).status_code == 404


def test_a_scheduled_unpublish_makes_a_cached_file_private_on_time(media: Media) -> None:
    client, anon = media.stack.client, media.stack.anon
    photo = _upload(client, "timed.png", png(color=(91, 92, 93)), "image/png").json()["data"][0]
    name = f"timed_{os.urandom(3).hex()}"
    schema = {"properties": {"photo": {"type": "media"}}}
    assert client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    item = client.post(
        "/api/content",
        json={"collection": name, "title": "Timed", "data": {"photo": photo["id"]}},
    ).json()["data"]
    assert client.post(f"/api/content/{item['id']}/publish").status_code == 200
    unpublish_at = int(time.time() * 1000) + 2000
    scheduled = client.post(
        f"/api/content/{item['id']}/schedule", json={"unpublish_at": unpublish_at}
    )
    assert scheduled.status_code == 200, scheduled.text
    assert anon.get(photo["url"]).status_code == 200
    assert anon.get(photo["url"]).headers["x-cache-status"] == "HIT"
    # No request reaches the gateway when the scheduler unpublishes: the cached copy knew
    # when it had to go (without Redis), or the scheduler's change invalidated it (with it).
    deadline = time.monotonic() + 8
    while anon.get(photo["url"]).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert anon.get(photo["url"]).status_code == 404
    assert int(time.time() * 1000) >= unpublish_at


def _jpeg(width: int, height: int, **save: Any) -> bytes:
    out = io.BytesIO()
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    gradient.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def test_variants_come_from_the_allowlist_and_are_made_once(media: Media) -> None:
    client = media.stack.client
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90° clockwise to show
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 7.5), 3: "E", 4: (4.0, 53.0, 1.2)}  # where
    sent = _jpeg(640, 480, exif=exif.tobytes())
    reply = _upload(client, "tall.jpg", sent, "image/jpeg")
    assert reply.status_code == 201, reply.text
    url = reply.json()["data"][0]["url"]

    # The original is stored without its GPS position, and nothing else of it changed.
    original = client.get(url)
    kept = Image.open(io.BytesIO(original.content)).getexif()
    assert 0x8825 not in kept and kept[0x0112] == 6
    assert len(original.content) == len(sent) and original.content != sent
    assert original.headers["etag"] == f'"{hashlib.sha256(original.content).hexdigest()}"'

    # Inside the box, upright (the stored image is 640 by 480 turned on its side), never larger.
    inside = client.get(url, params={"w": "400"})
    assert inside.status_code == 200, inside.text
    assert inside.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(inside.content))
    assert shown.size == (400, 533)
    assert not shown.getexif()  # no metadata of the original travels with a variant
    assert Image.open(io.BytesIO(client.get(url, params={"w": "2048"}).content)).size == (480, 640)

    preset = client.get(url, params={"preset": "thumb"})
    assert Image.open(io.BytesIO(preset.content)).size == (200, 200)
    padded = client.get(url, params={"w": "200", "h": "96", "fit": "contain", "format": "png"})
    assert padded.status_code == 200, padded.text
    assert (padded.headers["content-type"], Image.open(io.BytesIO(padded.content)).size) == (
        "image/png",
        (200, 96),
    )

    avif = client.get(
        url, params={"w": "200", "format": "auto"}, headers={"accept": "image/avif,*/*"}
    )
    assert avif.headers["content-type"] == "image/avif" and avif.headers["vary"] == "Accept"
    webp = client.get(url, params={"w": "200", "format": "auto"}, headers={"accept": "image/webp"})
    assert webp.headers["content-type"] == "image/webp"
    plain = client.get(url, params={"w": "200", "format": "auto"}, headers={"accept": "*/*"})
    assert plain.headers["content-type"] == "image/jpeg"
    # Kept by the gateway per format that `Accept` picks: each client still gets its own.
    for accept, kind in (("image/webp", "image/webp"), ("*/*", "image/jpeg")):
        cached = client.get(url, params={"w": "200", "format": "auto"}, headers={"accept": accept})
        assert (cached.headers["x-cache-status"], cached.headers["content-type"]) == ("HIT", kind)
        assert cached.headers["vary"] == "Accept"

    # Outside the allowlist: a clear 400, and nothing made.
    objects = len(media.objects())
    for params, field in (
        ({"w": "333"}, "w"),
        ({"w": "200", "q": "42"}, "q"),
        ({"preset": "huge"}, "preset"),
        ({"w": "200", "fit": "cover"}, "fit"),
    ):
        refused = client.get(url, params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert field in refused.text
    text = _upload(client, "notes.txt", b"plain words", "text/plain").json()["data"][0]
    assert client.get(text["url"], params={"w": "200"}).status_code == 400
    assert len(media.objects()) == objects + 1  # the text file, no variant

    # Concurrent first requests for one variant make it once.
    asked = {"w": "128", "h": "128", "format": "webp", "q": "60"}
    signed_in = {"authorization": client.headers["authorization"]}
    with httpx.Client(base_url=media.stack.base_url, headers=signed_in, timeout=30) as c:
        results: list[httpx.Response] = []

        def fetch() -> None:
            results.append(c.get(url, params=asked))

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert {r.status_code for r in results} == {200}
    assert len({r.content for r in results}) == 1
    made = media.stack.media.log().count('"spec":"w128-h128-cover-q60.webp"')
    assert made == 1
    assert len(media.objects()) == objects + 2


def test_bulk_move_and_bulk_delete_report_each_file(media: Media) -> None:
    client = media.stack.client
    objects = len(media.objects())
    ids = [
        _upload(client, f"b{n}.png", png(color=(n, 9, 99)), "image/png").json()["data"][0]["id"]
        for n in range(3)
    ]
    other = media.stack.user("editor")
    theirs = _upload(other.client, "theirs.png", png(color=(1, 2, 3)), "image/png")
    their_id = theirs.json()["data"][0]["id"]
    author = media.stack.user("author")
    missing = "0190c8b6-0000-7000-8000-000000000000"
    client.patch(f"/api/media/{ids[1]}", json={"tags": ["heron", "blue sky"]})
    for tag, found in (("blue sky", [ids[1]]), ("blue", []), ("HERON", [])):
        tagged = client.get("/api/media", params={"tag": tag}).json()["data"]
        assert [m["id"] for m in tagged] == found, tag

    moved = client.post("/api/media/bulk-move", json={"fileIds": ids, "folder": "/moved"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["summary"] == {"total": 3, "successful": 3, "failed": 0}
    listed = client.get("/api/media", params={"folder": "/moved"}).json()["data"]
    assert sorted(m["id"] for m in listed) == sorted(ids)
    assert (
        client.post("/api/media/bulk-move", json={"fileIds": ids, "folder": "../x"}).status_code
        == 400
    )

    # An author may delete only their own files: the others are reported, and kept.
    mixed = author.client.post("/api/media/bulk-delete", json={"fileIds": [ids[0], missing]})
    assert mixed.status_code == 200, mixed.text
    body = mixed.json()
    assert body["success"] is False and body["summary"]["successful"] == 0
    assert {e["code"] for e in body["errors"]} == {"permission_denied", "not_found"}
    assert client.get(f"/api/media/{ids[0]}").status_code == 200

    deleted = client.post("/api/media/bulk-delete", json={"fileIds": [*ids, their_id, missing]})
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["summary"] == {"total": 5, "successful": 4, "failed": 1}
    assert body["errors"][0]["fileId"] == missing and body["errors"][0]["code"] == "not_found"
    for media_id in (*ids, their_id):
        assert client.get(f"/api/media/{media_id}").status_code == 404
    assert len(media.objects()) == objects
    too_many = {"fileIds": [missing] * 51}
    assert client.post("/api/media/bulk-delete", json=too_many).status_code == 400
    assert media.stack.anon.post(
        "/api/media/bulk-delete", json={"fileIds": [missing]}
    ).status_code in (401, 403)


def test_a_raw_upload_and_a_duplicate(media: Media) -> None:
    client = media.stack.client
    text = f"Notes from the marsh {time.time_ns()}.\n".encode()
    reply = client.put(
        "/api/media/upload/notes.txt",
        content=text,
        headers={"content-type": "text/plain"},
        params={"folder": "/notes", "tags": "marsh,birds"},
    )
    assert reply.status_code == 201, reply.text
    made = reply.json()["data"]
    assert (made["mime_type"], made["tags"]) == ("text/plain", ["marsh", "birds"])
    served = media.stack.client.get(made["url"])
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.content == text

    again = _upload(client, "copy.txt", text, "text/plain")
    assert again.status_code == 201
    (copy,) = again.json()["data"]
    assert copy["id"] == made["id"]
    assert copy["meta"] == {"duplicate_of": made["id"]}
    assert sum(1 for r in media.rows() if r[1] == "ready") == len(
        client.get("/api/media", params={"limit": 100}).json()["data"]
    )


def _pixel_flood_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming `width` x `height`, with a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _noise(format: str) -> bytes:
    """An image that compresses badly, so that its pixel data is most of the file."""
    out = io.BytesIO()
    Image.effect_noise((160, 120), 64).convert("RGB").save(out, format)
    return out.getvalue()


HOSTILE_FILES = [
    # (name, body, claimed type, expected status)
    ("shell.jpg", b"<?php system($_GET['c']); ?>", "image/jpeg", 415),
    ("page.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "image/png", 415),
    ("page.html", b"<html><body onload='alert(1)'></body></html>", "text/html", 415),
    (
        "logo.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "image/svg+xml",
        415,
    ),
    ("flood.png", _pixel_flood_png(100_000, 100_000), "image/png", 413),
    ("cut.png", png()[:20], "image/png", 400),
    ("half.png", _noise("PNG")[: len(_noise("PNG")) // 2], "image/png", 400),
    ("half.jpg", _noise("JPEG")[:-200], "image/jpeg", 400),
    (
        "link.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x"/></svg>',
        "image/svg+xml",
        415,
    ),
    ("evil\u202egnp.exe", png(), "image/png", 400),
    ("x" * 1024 + ".png", png(), "image/png", 400),
]


@pytest.mark.parametrize("name, body, claimed, status", HOSTILE_FILES, ids=lambda v: str(v)[:12])
def test_a_hostile_upload_is_refused_and_leaves_nothing(
    media: Media, name: str, body: bytes, claimed: str, status: int
) -> None:
    rows, objects = len(media.rows()), len(media.objects())
    reply = _upload(media.stack.client, name, body, claimed)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]
    _nothing_left(media, rows, objects)


def test_a_name_with_a_nul_byte_is_refused(media: Media) -> None:
    """httpx would escape the NUL; a hostile client sends it raw."""
    rows, objects = len(media.rows()), len(media.objects())
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="nul\x00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--B--\r\n"
    )
    reply = media.stack.client.post(
        "/api/media/upload",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert reply.status_code == 400, reply.text
    raw = media.stack.client.put(
        "/api/media/upload/nul%00.png", content=png(), headers={"content-type": "image/png"}
    )
    assert raw.status_code == 400, raw.text
    _nothing_left(media, rows, objects)


def test_a_traversal_name_is_only_a_name(media: Media) -> None:
    reply = _upload(media.stack.client, "../../etc/heron-passwd.png", png(7, 7), "image/png")
    assert reply.status_code == 201, reply.text
    (made,) = reply.json()["data"]
    assert made["filename"] == "heron-passwd.png"
    assert media.stack.client.delete(f"/api/media/{made['id']}").status_code == 200


def _status_of_headers_only(stack: Stack, content_length: int) -> int:
    """Send only an upload's headers, claiming `content_length`; the status answered."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    token = stack.client.headers["authorization"]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            (
                f"PUT /api/media/upload/claimed.png HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: {token}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {content_length}\r\n\r\n"
            ).encode()
        )
        head = conn.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_size_and_part_limits_hold_while_streaming(media: Media) -> None:
    client = media.stack.client
    rows, objects = len(media.rows()), len(media.objects())
    # One file over the per-file limit (24 MiB) inside a request under the request limit.
    big = png() + os.urandom(25 * MiB)
    assert _upload(client, "big.png", big, "image/png").status_code == 413
    # A chunked body (no Content-Length) over the request limit (32 MiB).

    def chunks() -> Iterator[bytes]:
        yield png()
        for _ in range(40):
            yield os.urandom(MiB)

    chunked = client.put(
        "/api/media/upload/stream.png", content=chunks(), headers={"content-type": "image/png"}
    )
    assert chunked.status_code == 413, chunked.text
    # A Content-Length that claims more than the limit is refused before any byte is sent.
    assert _status_of_headers_only(media.stack, 40 * MiB) == 413
    # Too many parts.
    many = client.post(
        "/api/media/upload",
        files=[("file", (f"f{n}.png", png(5 + n, 5), "image/png")) for n in range(7)],
    )
    assert many.status_code == 413, many.text
    # All or nothing: the files of `many` stored before the limit was reached are gone again.
    _nothing_left(media, rows, objects)


def test_a_denied_upload_stores_nothing(media: Media) -> None:
    rows, objects = len(media.rows()), len(media.objects())
    anonymous = _upload(media.stack.anon, "a.png", png(), "image/png")
    assert anonymous.status_code == 401
    viewer = media.stack.user("viewer")
    denied = _upload(viewer.client, "v.png", png(), "image/png")
    assert denied.status_code == 403
    assert "media.upload" in denied.text
    _nothing_left(media, rows, objects)


def test_killing_the_media_service_mid_upload_leaves_nothing_after_restart(
    media: Media,
) -> None:
    stack = media.stack
    rows, objects = len(media.rows()), len(media.objects())
    sent = threading.Event()

    def slow() -> Iterator[bytes]:
        yield png()
        for n in range(20):
            yield os.urandom(MiB)
            if n == 11:  # past two S3 parts of 5 MiB: a multipart upload is under way
                sent.set()
                time.sleep(30)

    def upload() -> None:
        try:
            stack.client.put(
                "/api/media/upload/killed.png",
                content=slow(),
                headers={"content-type": "image/png"},
                timeout=60,
            )
        except httpx.HTTPError:
            pass

    worker = threading.Thread(target=upload, daemon=True)
    worker.start()
    assert sent.wait(30)
    time.sleep(1.0)
    assert any(state == "uploading" for _, state in media.rows())
    if media.kind == "s3":
        assert media.multipart_uploads(), "the upload should be a multipart upload by now"
    stack.media.signal(signal.SIGKILL)
    stack.media.popen.wait()  # type: ignore[union-attr]
    # Nothing half-written is visible meanwhile.
    assert stack.client.get("/api/media", params={"search": "killed"}).status_code in (200, 503)
    stack.media.env["HERON_MEDIA_STALE_UPLOAD_SECONDS"] = "0.5"
    time.sleep(1.0)
    stack.media.start()
    stack.wait_ready()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(media.rows()) != rows:
        time.sleep(0.2)
    _nothing_left(media, rows, objects)
    listed = stack.client.get("/api/media", params={"search": "killed"}).json()["data"]
    assert listed == []
    worker.join(5)
