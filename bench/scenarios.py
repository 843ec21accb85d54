"""The scenario registry: what is measured, against which floor, and the targets to report.

A scenario whose `requires` names a feature the running Heron lacks is reported as
"n/a (not built yet)". To add one once its feature exists, write its `plan` (a function of the
run's `Context` returning what to request) and, if needed, how `Context` gets what it uses.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import orjson

from bench import media, plugins, webhooks
from bench.content import SEARCH_WORDS, item_payload
from bench.errors import BenchError
from bench.sequential import Body, Cleanup, Prepare

HOT_ITEMS = 10_000
Kind = Literal["load", "sequential"]
# "none": nothing to compare with (a variant's first rendering: its note gives Pillow's own time).
FloorKind = Literal["asgi", "echo", "none"]
# Which gateway a scenario is sent to: the run's own; one with its response cache off (the
# content service's tier answers); or one with two workers, unpinned, beside a two-worker floor.
Via = Literal["gateway", "tier-off", "two-workers"]


@dataclass(frozen=True)
class Context:
    """What scenarios may use: the gateway, the seeded items and what the gateway can do."""

    base_url: str
    collection: str
    item_ids: tuple[str, ...]
    item_paths_file: Path
    # At most HOT_ITEMS of them: what the cached scenarios read (all of it stays cached).
    hot_paths_file: Path
    features: Mapping[str, bool]
    token: str | None = None  # the first admin's bearer token (kept fresh by the runner)
    admin_email: str = ""  # the first admin's credentials, for the login scenario
    admin_password: str = ""
    quick: bool = False  # --quick: the heavy sequential scenarios send fewer requests


@dataclass(frozen=True)
class LoadPlan:
    """wrk requests `path`, or a random line of `paths_file` per request."""

    path: str
    paths_file: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Request every path once before the warm-up: a cached scenario then measures hits only,
    # however slowly its misses would have filled the cache.
    prime: bool = False
    note: str = ""  # what the plan found out while making itself, for the table's notes


@dataclass(frozen=True)
class SequentialPlan:
    """One client sends `method path` with body `make_body(n)`, one request at a time."""

    method: str
    path: str
    make_body: Callable[[int], Body] | None
    headers: dict[str, str] = field(default_factory=dict)
    # Untimed work before and after each request (see bench.sequential); `prepare` returns
    # the request's path, instead of `path`.
    prepare: Prepare | None = None
    cleanup: Cleanup | None = None
    # Requests and warm-up requests, for scenarios whose every request is heavy (an upload of
    # 50 MB, an image decoded); default --sequential-requests, and a tenth of it (at least 5).
    requests: int | None = None
    warmup: int | None = None
    # A streamed body's size (its Content-Length): the floor's body size and the throughput.
    body_bytes: int | None = None
    # Sample the servers' RSS every 10 ms through warm-up and measured requests: the peak
    # over what they held just before (an upload must not hold its file in memory).
    sample_rss: bool = False
    # The unavoidable work each request does, timed by the bench itself: (what, ms).
    baseline: tuple[str, float] | None = None
    note: str = ""
    # Untimed work after the measured requests, whose text is added to the note.
    after: Callable[[], str] | None = None


Plan = LoadPlan | SequentialPlan


@dataclass(frozen=True)
class Figures:
    """What targets are checked against; `ratio` is the share of the floor reached."""

    rps: float
    p50_ms: float
    p99_ms: float
    ratio: float | None
    # How many times the cost of the scenario it is compared with (that one's req/s ÷ this one's).
    relative: float | None = None
    # What the machine spends on the scenario's own unavoidable work (argon2 for a login), ms.
    baseline_ms: float | None = None
    # How much each process's RSS rose at its peak over what it held before the scenario, MB.
    rss_growth_mb: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    label: str
    check: Callable[[Figures], bool]


def at_least(share: float, floor_name: str) -> Target:
    return Target(
        f"≥ {share:.0%} of {floor_name}", lambda f: f.ratio is not None and f.ratio >= share
    )


def p99_under(ms: float) -> Target:
    return Target(f"p99 < {ms:g} ms", lambda f: f.p99_ms < ms)


def p50_under(ms: float) -> Target:
    return Target(f"p50 ≤ {ms:g} ms", lambda f: f.p50_ms <= ms)


def p50_over_baseline(ms: float, baseline: str) -> Target:
    return Target(
        f"p50 ≤ {baseline} + {ms:g} ms",
        lambda f: f.baseline_ms is not None and f.p50_ms <= f.baseline_ms + ms,
    )


def peak_rss_growth_under(mb: float, processes: tuple[str, ...]) -> Target:
    """Each of `processes` stays within `mb` of the RSS it had before (a sampled peak)."""

    def held(f: Figures) -> bool:
        growth = [f.rss_growth_mb.get(p, math.inf) for p in processes]
        return bool(growth) and max(growth) < mb

    return Target(f"peak RSS grows < {mb:g} MB ({', '.join(processes)})", held)


def within(times: float, other: str) -> Target:
    return Target(
        f"within {times:g} times of {other}",
        lambda f: f.relative is not None and f.relative <= times,
    )


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: Kind
    floor: FloorKind
    plan: Callable[[Context], Plan] | None
    requires: frozenset[str] = frozenset()
    # Features the scenario is about but can run without; each missing one adds its note.
    prefers: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    via: Via = "gateway"
    # The key of an earlier scenario this one's cost is compared with (`Figures.relative`).
    compare_to: str | None = None


def _auth(ctx: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.token}"} if ctx.token else {}


def _list_plan(ctx: Context) -> Plan:
    return LoadPlan(f"/api/collections/{ctx.collection}/content?limit=50", prime=True)


def _item_plan(ctx: Context) -> Plan:
    return LoadPlan(f"/api/content/{ctx.item_ids[0]}", paths_file=ctx.hot_paths_file, prime=True)


def _auth_item_plan(ctx: Context) -> Plan:
    # The same reads as `cached-item`, signed in: the token is verified on every request.
    return LoadPlan(
        f"/api/content/{ctx.item_ids[0]}",
        paths_file=ctx.hot_paths_file,
        headers=_auth(ctx),
        prime=True,
    )


def _uncached_item_plan(ctx: Context) -> Plan:
    # `no-cache` asks the gateway to skip its cache; the cache must honour it (see README).
    return LoadPlan(
        f"/api/content/{ctx.item_ids[0]}",
        paths_file=ctx.item_paths_file,
        headers={"Cache-Control": "no-cache"},
    )


FRESH = {"Cache-Control": "no-cache"}  # every cache tier skipped: the database answers
LIST = "/api/collections/{collection}/content"
DEEP_PAGE = 200  # the deep cursor page: page 200 of 50


def _depth(ctx: Context, wanted: int) -> int:
    """An offset `wanted` items deep, or as deep as the seeded items go."""
    return max(0, min(wanted, len(ctx.item_ids) - 50))


def _first_page_plan(ctx: Context) -> Plan:
    return LoadPlan(f"{LIST.format(collection=ctx.collection)}?limit=50", headers=FRESH)


def _filtered_plan(ctx: Context) -> Plan:
    """Two conditions on data fields (`views`, indexed, and `tags`), sorted on the indexed one;
    each request its own threshold, so no answer repeats."""
    rng = random.Random(7)
    lines = []
    for _ in range(5000):
        where = {
            "data.views": {"_gte": rng.randint(0, 45_000)},
            "data.tags": {"_contains": "birds"},
        }
        query = urlencode({"limit": 50, "sort": "-data.views", "filter": orjson.dumps(where)})
        lines.append(f"{LIST.format(collection=ctx.collection)}?{query}\n")
    paths = ctx.item_paths_file.with_name("filtered-paths.txt")
    paths.write_text("".join(lines))
    first = lines[0].strip()
    return LoadPlan(first, paths_file=paths, headers=FRESH)


def _deep_cursor_plan(ctx: Context) -> Plan:
    """Page 200 of 50 by cursor: the cursor is found by walking there in pages of 1,000."""
    depth = _depth(ctx, (DEEP_PAGE - 1) * 50)
    base = LIST.format(collection=ctx.collection)
    cursor = ""
    with httpx.Client(base_url=ctx.base_url, timeout=60, headers=FRESH) as client:
        walked = 0
        while walked < depth:
            step = min(1000, depth - walked)
            params: dict[str, Any] = {"limit": step}
            if cursor:
                params["cursor"] = cursor
            reply = client.get(base, params=params)
            reply.raise_for_status()
            cursor = reply.json()["meta"]["next_cursor"] or ""
            walked += step
    path = f"{base}?limit=50" + (f"&cursor={cursor}" if cursor else "")
    return LoadPlan(path, headers=FRESH)


def _offset_plan(wanted: int) -> Callable[[Context], Plan]:
    def plan(ctx: Context) -> Plan:
        offset = _depth(ctx, wanted)
        return LoadPlan(
            f"{LIST.format(collection=ctx.collection)}?limit=50&offset={offset}", headers=FRESH
        )

    return plan


INCLUDE_PEOPLE = "bench_people"
INCLUDE_POSTS = "bench_linked"


def _include_plan(ctx: Context) -> Plan:
    """A page of 50 items each pointing at two people (`author`, `editor`), both included.
    Its own small collections, made here through the API (not measured)."""
    people_schema = {"properties": {"name": {"type": "string"}, "bio": {"type": "text"}}}
    linked_schema = {
        "properties": {
            "body": {"type": "text"},
            "author": {"type": "reference", "collection": INCLUDE_PEOPLE},
            "editor": {"type": "reference", "collection": INCLUDE_PEOPLE},
        }
    }
    rng = random.Random(5)
    with httpx.Client(base_url=ctx.base_url, headers=_auth(ctx), timeout=30) as client:

        def made(reply: httpx.Response) -> dict[str, Any]:
            if reply.status_code not in (200, 201):
                raise BenchError(f"include setup: {reply.status_code} {reply.text[:200]}")
            data: dict[str, Any] = reply.json()["data"]
            return data

        for name, schema in ((INCLUDE_PEOPLE, people_schema), (INCLUDE_POSTS, linked_schema)):
            made(client.post("/api/collections", json={"name": name, "schema": schema}))
        people = [
            made(
                client.post(
                    "/api/content",
                    json={
                        "collection": INCLUDE_PEOPLE,
                        "title": f"Person {n}",
                        "status": "published",
                        "data": {"name": f"Person {n}", "bio": "Watches herons."},
                    },
                )
            )["id"]
            for n in range(20)
        ]
        for n in range(50):
            made(
                client.post(
                    "/api/content",
                    json={
                        "collection": INCLUDE_POSTS,
                        "title": f"Linked {n}",
                        "status": "published",
                        "data": {
                            "body": "Notes from the marsh.",
                            "author": rng.choice(people),
                            "editor": rng.choice(people),
                        },
                    },
                )
            )
    query = urlencode({"limit": 50, "include": "data.author,data.editor"})
    return LoadPlan(f"{LIST.format(collection=INCLUDE_POSTS)}?{query}", headers=FRESH)


def _search_plan(ctx: Context) -> Plan:
    """A full-text search for one or two words of the seeded text, best matches first."""
    rng = random.Random(11)
    lines = []
    for _ in range(2000):
        words = " ".join(rng.sample(SEARCH_WORDS, rng.randint(1, 2)))
        query = urlencode({"limit": 50, "search": words})
        lines.append(f"{LIST.format(collection=ctx.collection)}?{query}\n")
    paths = ctx.item_paths_file.with_name("search-paths.txt")
    paths.write_text("".join(lines))
    return LoadPlan(lines[0].strip(), paths_file=paths, headers=FRESH)


def _create_plan(ctx: Context) -> Plan:
    def body(n: int) -> bytes:
        payload = item_payload(n, seed=2)
        payload["title"] = f"{payload['title']} (create {n})"
        return orjson.dumps(payload)

    return SequentialPlan("POST", "/api/content", body, headers=_auth(ctx))


def _create_hooked_plan(ctx: Context) -> Plan:
    plugins.activate(ctx.base_url, ctx.token or "", ctx.collection)
    # Target (issue: plugins): at most one gRPC round trip (about 1 ms) over `create-item`.
    note = "one active content:beforeCreate hook (it hands the payload back unchanged)"
    return dataclasses.replace(_create_plan(ctx), note=note)


def _create_webhooked_plan(ctx: Context) -> Plan:
    webhooks.activate(ctx.base_url, ctx.token or "", ctx.collection)
    # Target (issue: plugins): after hooks and webhooks add < 0.5 ms over `create-item`.
    note = "one active after hook (webhooks) and one endpoint at a local receiver"
    return dataclasses.replace(
        _create_plan(ctx),
        note=note,
        after=lambda: webhooks.throughput(ctx.base_url, ctx.token or "", ctx.collection),
    )


def _login_plan(ctx: Context) -> Plan:
    # Successful sign-ins only (failures are rate limited per account): each one verifies the
    # argon2id hash, which is most of its cost, and opens a session.
    body = orjson.dumps({"email": ctx.admin_email, "password": ctx.admin_password})
    return SequentialPlan("POST", "/auth/login", lambda _n: body)


def _admin_list_plan(ctx: Context) -> Plan:
    # The admin's content list page (HTML, 25 items, newest first), signed in: never cached.
    return SequentialPlan("GET", f"/admin/content/{ctx.collection}", None, headers=_auth(ctx))


def _json_list_plan(ctx: Context) -> Plan:
    # The same 25 items as JSON through the REST API, from the database like the page.
    path = f"{LIST.format(collection=ctx.collection)}?limit=25"
    return SequentialPlan("GET", path, None, headers={**_auth(ctx), **FRESH})


def _uncached_warm_plan(ctx: Context) -> Plan:
    # Sent to the gateway whose own response cache is off: the content service's tier answers.
    return LoadPlan(f"/api/content/{ctx.item_ids[0]}", paths_file=ctx.item_paths_file)


def _upload_plan(mib: int, requests: int, quick_requests: int) -> Callable[[Context], Plan]:
    """`mib` MiB of text, streamed through the raw-body upload route, each upload deleted
    again once answered (untimed, so the disk does not fill); the servers' RSS is sampled
    throughout, for the peak."""

    def plan(ctx: Context) -> Plan:
        def cleanup(_n: int, status: int, answer: bytes) -> None:
            if status == 201:
                media.delete(ctx.base_url, ctx.token, orjson.loads(answer)["data"]["id"])

        size = mib * media.MiB
        return SequentialPlan(
            "PUT",
            media.UPLOAD_PATH.format(filename=f"bench-{mib}mb.txt"),
            lambda n: media.text_body(n, size),
            headers={**_auth(ctx), "Content-Type": "text/plain"},
            cleanup=cleanup,
            requests=quick_requests if ctx.quick else requests,
            warmup=max(1, (quick_requests if ctx.quick else requests) // 5),
            body_bytes=size,
            sample_rss=True,
        )

    return plan


ORIGINAL_MIB = 1
VARIANT_QUERY = "w=480&format=webp"  # a cached variant: a small WebP of a 3-megapixel JPEG
FIRST_WIDTH, FIRST_FORMAT = 1024, "webp"  # the first-time variant: the `medium` preset's width


def _original_plan(ctx: Context) -> Plan:
    """A 1 MiB original (text: its type changes nothing on the way out), signed in: a file no
    published item uses is not public."""
    body = b"".join(media.text_body(0, ORIGINAL_MIB * media.MiB))
    stored = media.upload(ctx.base_url, ctx.token, "bench-original.txt", body, "text/plain")
    path = stored["url"]
    note = media.cache_note(ctx.base_url, path, _auth(ctx))
    return LoadPlan(path, headers=_auth(ctx), prime=True, note=note)


def _cached_variant_plan(ctx: Context) -> Plan:
    """A 2000x1500 JPEG's `w=480` WebP, made by the first request (the plan's own), then
    stored: every measured request asks for the variant that exists."""
    jpeg = media.photo_jpeg(2000, 1500, 85)
    stored = media.upload(ctx.base_url, ctx.token, "bench-3mp.jpg", jpeg, "image/jpeg")
    path = f"{stored['url']}?{VARIANT_QUERY}"
    note = media.cache_note(ctx.base_url, path, _auth(ctx))
    return LoadPlan(path, headers=_auth(ctx), prime=True, note=note)


def _first_variant_plan(ctx: Context) -> Plan:
    """The first request for a variant of a 12-megapixel JPEG (4000x3000, quality 90): before
    each request a fresh copy of the photo is stored, and after it deleted (both untimed), so
    every timed request does the same work, the variant's first rendering, and no file
    reaches its cap of variants."""
    jpeg = media.photo_jpeg(4000, 3000, 90)
    copies: dict[int, str] = {}

    def prepare(n: int) -> str:
        stored = media.upload(ctx.base_url, ctx.token, f"bench-12mp-{n}.jpg", jpeg, "image/jpeg")
        copies[n] = stored["id"]
        return f"{stored['url']}?w={FIRST_WIDTH}&format={FIRST_FORMAT}"

    def cleanup(n: int, _status: int, _answer: bytes) -> None:
        media.delete(ctx.base_url, ctx.token, copies.pop(n))

    rendered = media.render_ms(jpeg, FIRST_WIDTH, FIRST_FORMAT)
    return SequentialPlan(
        "GET",
        "",
        None,
        headers=_auth(ctx),
        prepare=prepare,
        cleanup=cleanup,
        requests=8 if ctx.quick else 20,
        warmup=2,
        sample_rss=True,
        baseline=("render alone (the media service's code, in the bench's process)", rendered),
        note=f"{len(jpeg) / media.MiB:.1f} MB JPEG, 4000x3000 → w={FIRST_WIDTH} {FIRST_FORMAT}",
    )


NO_CACHE = "no cache yet: measures the uncached path"
CACHED_TARGETS = (at_least(0.7, "raw ASGI"), p99_under(5))
UNCACHED_TARGETS = (at_least(0.7, "echo hop"),)
FLAT_UPLOADS = (peak_rss_growth_under(20, ("gateway", "media")),)
NEAR_UNCACHED = (within(1.5, "the uncached item"),)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "cached-list",
        "cached list read (limit=50, anonymous)",
        "load",
        "asgi",
        _list_plan,
        prefers={"cache": NO_CACHE},
        targets=CACHED_TARGETS,
    ),
    Scenario(
        "cached-item",
        "cached single item (random ids)",
        "load",
        "asgi",
        _item_plan,
        prefers={"cache": NO_CACHE},
        targets=CACHED_TARGETS,
    ),
    Scenario(
        "uncached-item",
        "uncached single item (gateway → gRPC → DB)",
        "load",
        "echo",
        _uncached_item_plan,
        targets=UNCACHED_TARGETS,
    ),
    Scenario(
        "uncached-warm",
        "uncached single item, content service's tier warm (gateway cache off)",
        "load",
        "echo",
        _uncached_warm_plan,
        targets=UNCACHED_TARGETS,
        via="tier-off",
    ),
    Scenario(
        "first-page",
        "first page of the list, from the database (limit=50, no-cache)",
        "load",
        "echo",
        _first_page_plan,
    ),
    Scenario(
        "filtered-list",
        "filtered + sorted list (2 data conditions, 1 indexed; no-cache)",
        "load",
        "echo",
        _filtered_plan,
        requires=frozenset({"filters"}),
        targets=NEAR_UNCACHED,
        compare_to="uncached-item",
    ),
    Scenario(
        "deep-keyset",
        "deep cursor page (page 200 of 50; no-cache)",
        "load",
        "echo",
        _deep_cursor_plan,
        requires=frozenset({"keyset"}),
        targets=NEAR_UNCACHED,
        compare_to="uncached-item",
    ),
    Scenario(
        "deep-offset",
        "the same depth by offset (offset 9,950; no-cache)",
        "load",
        "echo",
        _offset_plan((DEEP_PAGE - 1) * 50),
    ),
    Scenario(
        "offset-50k",
        "offset 50,000 (limit=50; no-cache)",
        "load",
        "echo",
        _offset_plan(50_000),
    ),
    # Plans below are written when their feature lands (the API's exact shape is not known).
    Scenario(
        "include-list",
        "list of 50 with 2 reference fields included (no-cache)",
        "load",
        "echo",
        _include_plan,
        requires=frozenset({"include"}),
    ),
    Scenario(
        "search",
        "full-text search (1-2 words, ranked; no-cache)",
        "load",
        "echo",
        _search_plan,
        requires=frozenset({"search"}),
    ),
    Scenario(
        "auth-read",
        "authenticated single item (bearer token, random ids)",
        "load",
        "asgi",
        _auth_item_plan,
        requires=frozenset({"auth"}),
        prefers={"cache": NO_CACHE},
        targets=CACHED_TARGETS,
    ),
    Scenario(
        "cached-list-2w",
        "cached list read, 2 gateway workers, unpinned (beside cached-list)",
        "load",
        "asgi",
        _list_plan,
        prefers={"cache": NO_CACHE},
        targets=CACHED_TARGETS,
        via="two-workers",
    ),
    Scenario(
        "cached-item-2w",
        "cached single item, 2 gateway workers, unpinned (beside cached-item)",
        "load",
        "asgi",
        _item_plan,
        prefers={"cache": NO_CACHE},
        targets=CACHED_TARGETS,
        via="two-workers",
    ),
    Scenario(
        "create-item",
        "create item (authenticated), sequential",
        "sequential",
        "echo",
        _create_plan,
        prefers={"auth": "no auth yet: anonymous create"},
        targets=(p50_under(3),),
    ),
    Scenario(
        "json-list",
        "content list as JSON (25 items, signed in, no-cache), sequential",
        "sequential",
        "asgi",
        _json_list_plan,
        requires=frozenset({"auth"}),
    ),
    Scenario(
        "admin-list",
        "the admin's content list page (HTML, 25 items), sequential",
        "sequential",
        "asgi",
        _admin_list_plan,
        requires=frozenset({"auth"}),
        compare_to="json-list",
    ),
    Scenario(
        "login",
        "login, sequential",
        "sequential",
        "echo",
        _login_plan,
        requires=frozenset({"auth"}),
        targets=(p50_over_baseline(3, "argon2"),),
    ),
    Scenario(
        "media-upload-1mb",
        "upload a 1 MB file (raw body, streamed), sequential",
        "sequential",
        "asgi",
        _upload_plan(1, requests=20, quick_requests=10),
        requires=frozenset({"media"}),
        targets=FLAT_UPLOADS,
    ),
    Scenario(
        "media-upload-50mb",
        "upload a 50 MB file (raw body, streamed), sequential",
        "sequential",
        "asgi",
        _upload_plan(50, requests=5, quick_requests=3),
        requires=frozenset({"media"}),
        targets=FLAT_UPLOADS,
    ),
    Scenario(
        "media-upload-200mb",
        "upload a 200 MB file (raw body, streamed), sequential",
        "sequential",
        "asgi",
        _upload_plan(200, requests=3, quick_requests=2),
        requires=frozenset({"media"}),
        targets=FLAT_UPLOADS,
    ),
    Scenario(
        "media-original",
        "deliver a 1 MB original (signed in)",
        "load",
        "asgi",
        _original_plan,
        requires=frozenset({"media"}),
    ),
    Scenario(
        "media-variant-cached",
        "deliver a stored variant (w=480 WebP, signed in)",
        "load",
        "asgi",
        _cached_variant_plan,
        requires=frozenset({"media"}),
        targets=(at_least(0.5, "raw ASGI"),),
    ),
    Scenario(
        "media-variant-first",
        "first-time variant of a 12-megapixel JPEG (w=1024 WebP), sequential",
        "sequential",
        "none",
        _first_variant_plan,
        requires=frozenset({"media"}),
    ),
    # Last: they leave plugins active, and no later scenario should pay for them.
    Scenario(
        "create-item-hooked",
        "create item with one active before hook, sequential",
        "sequential",
        "echo",
        _create_hooked_plan,
        requires=frozenset({"plugins"}),
    ),
    Scenario(
        "create-item-webhooked",
        "create item with an after hook and a webhook endpoint, sequential",
        "sequential",
        "echo",
        _create_webhooked_plan,
        requires=frozenset({"plugins"}),
    ),
)
