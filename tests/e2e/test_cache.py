"""The three-tier cache through the gateway: headers, purges, roles, processes, Redis faults."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import free_port
from tests.e2e.conftest import Service, Stack, content_sql, start_stack
from tests.e2e.test_content_api import unique

SCHEMA = {"properties": {"body": {"type": "text"}}}


@pytest.fixture(scope="module", params=["memory", "redis"])
def cache_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack for this module's cache tests, with the cache on memory alone or on memory and
    Redis. Each test works on collections of its own and leaves the roles as it found them."""
    env = {}
    if request.param == "redis":
        env["HERON_REDIS_URL"] = request.getfixturevalue("redis_url")
    running = start_stack(
        tmp_path_factory.mktemp(f"cache-{request.param}"), seed=False, extra_env=env
    )
    yield running
    running.stop()


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without the moment it was produced."""
    meta = {k: v for k, v in body.get("meta", {}).items() if k != "timestamp"}
    return {**body, "meta": meta} if "meta" in body else body


def _collection(stack: Stack) -> str:
    name = f"c_{uuid.uuid4().hex[:8]}"
    reply = stack.client.post("/api/collections", json={"name": name, "schema": SCHEMA})
    assert reply.status_code == 201, reply.text
    return name


def test_hits_are_marked_validated_and_public_answers_are_cdn_cacheable(
    cache_stack: Stack,
) -> None:
    stack = cache_stack
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "T", "status": "published"}
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    first = stack.anon.get(url)
    assert first.headers["x-cache-status"] == "MISS"
    assert first.headers["x-cache-source"] == "database"
    second = stack.anon.get(url)
    assert second.headers["x-cache-status"] == "HIT"
    assert second.headers["x-cache-source"] == "memory"
    assert 0 < int(second.headers["x-cache-ttl"]) <= 330
    assert second.json() == first.json()
    assert "s-maxage" in second.headers["cache-control"]
    assert "public" in second.headers["cache-control"]
    etag = second.headers["etag"]
    assert stack.anon.get(url, headers={"if-none-match": etag}).status_code == 304
    assert stack.anon.get(url, headers={"if-none-match": '"other"'}).status_code == 200
    bypass = stack.anon.get(url, headers={"cache-control": "no-cache"})
    assert bypass.headers["x-cache-status"] == "BYPASS" and bypass.json() == first.json()
    mine = stack.client.get(url)
    assert "private" in mine.headers["cache-control"]


def test_a_hit_carries_every_header_the_full_chain_adds(cache_stack: Stack) -> None:
    """Hits are answered in front of the middleware: the same headers as the answer that
    filled the cache, the caller's request id, the security headers, for readers signed in
    or not, for lists and items, and on a 304."""
    stack = cache_stack
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "T", "status": "published"}
    ).json()["data"]
    varying = {"x-cache-status", "x-cache-source", "x-cache-ttl", "x-request-id", "date"}
    for reader in (stack.anon, stack.client):
        for url in (f"/api/content/{item['id']}", f"/api/collections/{name}/content"):
            first = reader.get(url, headers={"x-request-id": "fill-1"})
            hit = reader.get(url, headers={"x-request-id": "hit-1"})
            assert (first.headers["x-cache-status"], hit.headers["x-cache-status"]) == (
                "MISS",
                "HIT",
            )
            assert hit.headers["x-request-id"] == "hit-1"
            same = [(k, v) for k, v in first.headers.multi_items() if k not in varying]
            assert [(k, v) for k, v in hit.headers.multi_items() if k not in varying] == same
            assert (
                hit.headers["content-security-policy"]
                == "default-src 'none'; frame-ancestors 'none'"
            )
            assert hit.content == first.content
            made_up = reader.get(url).headers["x-request-id"]  # one is made when none is sent
            assert len(made_up) == 32 and made_up != reader.get(url).headers["x-request-id"]
            unchanged = reader.get(
                url, headers={"if-none-match": hit.headers["etag"], "x-request-id": "again"}
            )
            assert unchanged.status_code == 304
            assert unchanged.headers["x-request-id"] == "again"
            assert unchanged.headers["x-frame-options"] == "DENY"
    # What the hygiene layer would change or refuse is still its to answer.
    assert stack.anon.get(f"/api/content/{item['id']}/").headers["x-cache-status"] == "HIT"
    refused = stack.anon.get(f"/api/content/{item['id']}", params={"access_token": "x"})
    assert refused.status_code == 401
    # A browser session's cookie is a caller like a bearer token: its drafts, privately.
    draft = stack.client.post("/api/content", json={"collection": name, "title": "D"}).json()
    token = stack.client.headers["authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=stack.base_url, cookies={"auth_token": token}) as browser:
        url = f"/api/content/{draft['data']['id']}"
        assert browser.get(url).status_code == 200
        again = browser.get(url)
        assert again.headers["x-cache-status"] == "HIT"
        assert "private" in again.headers["cache-control"]
        assert stack.anon.get(url).status_code == 404
        browser.cookies.set("auth_token", "not-a-token")
        assert browser.get(url).status_code == 401


PURGES = [
    "create item",
    "update item",
    "publish",
    "unpublish",
    "delete item",
    "schema change",
    "permission change",
]


@pytest.mark.parametrize("mutation", PURGES)
def test_every_mutation_makes_the_next_read_a_miss_with_new_data(
    cache_stack: Stack, mutation: str
) -> None:
    stack = cache_stack
    name = _collection(stack)
    live = stack.client.post(
        "/api/content", json={"collection": name, "title": "Live", "status": "published"}
    ).json()["data"]
    draft = stack.client.post("/api/content", json={"collection": name, "title": "Draft"})
    draft_id = draft.json()["data"]["id"]
    list_url = f"/api/collections/{name}/content"
    reads = {
        "list": (stack.anon, list_url),
        "item": (stack.anon, f"/api/content/{live['id']}"),
        "collection": (stack.anon, f"/api/collections/{name}"),
        "admin list": (stack.client, list_url),
    }
    for client, url in reads.values():
        client.get(url)
        assert client.get(url).headers["x-cache-status"] == "HIT"

    if mutation == "create item":
        stack.client.post(
            "/api/content", json={"collection": name, "title": "New", "status": "published"}
        )
        stale = ["list", "admin list"]
    elif mutation == "update item":
        stack.client.patch(f"/api/content/{live['id']}", json={"title": "Renamed"})
        stale = ["list", "item", "admin list"]
    elif mutation == "publish":
        stack.client.patch(f"/api/content/{draft_id}", json={"status": "published"})
        stale = ["list", "admin list"]
    elif mutation == "unpublish":
        stack.client.patch(f"/api/content/{live['id']}", json={"status": "draft"})
        stale = ["list", "item", "admin list"]
    elif mutation == "delete item":
        stack.client.delete(f"/api/content/{live['id']}")
        stale = ["list", "item", "admin list"]
    elif mutation == "schema change":
        stack.client.patch(
            f"/api/collections/{name}",
            json={"schema": {"properties": {"body": {"type": "text"}, "n": {"type": "number"}}}},
        )
        stale = ["collection"]
    else:  # anonymous callers lose the right to read content
        public = next(
            r for r in stack.client.get("/api/roles").json()["data"] if r["name"] == "public"
        )
        stack.client.put("/api/roles/public", json={"permissions": ["collections.read"]})
        try:
            until = time.monotonic() + 5
            while stack.anon.get(list_url).status_code != 401 and time.monotonic() < until:
                time.sleep(0.05)
            assert stack.anon.get(list_url).status_code == 401
            assert stack.anon.get(reads["item"][1]).status_code == 401
        finally:
            stack.client.put("/api/roles/public", json={"permissions": public["permissions"]})
            # The next test on this stack reads as anonymous again once the gateway has heard.
            until = time.monotonic() + 5
            while stack.anon.get(list_url).status_code != 200 and time.monotonic() < until:
                time.sleep(0.05)
        return

    for what, (client, url) in reads.items():
        reply = client.get(url)
        if what in stale and reply.status_code == 200:
            assert reply.headers["x-cache-status"] == "MISS", what
        fresh = client.get(url, headers={"cache-control": "no-cache"})  # straight from the store
        assert reply.status_code == fresh.status_code, what
        if reply.status_code == 200:
            assert _strip(reply.json()) == _strip(fresh.json()), what


def test_answers_with_the_cache_on_equal_answers_with_it_off(
    tmp_path: Path, redis_url: str
) -> None:
    """Two gateways (and services) on one store: one caching, one not, compared per role."""
    on = start_stack(tmp_path, extra_env={"HERON_REDIS_URL": redis_url}, name="on-")
    off = start_stack(
        tmp_path,
        extra_env={"HERON_CACHE_ENABLED": "false"},
        admin_email=on.admin_email,
        name="off-",
    )
    try:
        name = _collection(on)
        author = on.user("author")
        author.client.post("/api/content", json={"collection": name, "title": "author draft"})
        on.client.post("/api/content", json={"collection": name, "title": "admin draft"})
        on.client.post(
            "/api/content", json={"collection": name, "title": "live", "status": "published"}
        )
        callers: dict[str, dict[str, str]] = {"anonymous": {}}
        callers["admin"] = dict(on.client.headers)
        callers["author"] = dict(author.client.headers)
        for role in ("editor", "viewer"):
            callers[role] = dict(on.user(role).client.headers)
        ids = [i["id"] for i in on.client.get(f"/api/collections/{name}/content").json()["data"]]
        urls = [
            f"/api/collections/{name}/content",
            f"/api/content?collection={name}",
            "/api/content?limit=5",
            f"/api/collections/{name}",
            "/api/collections",
            *(f"/api/content/{i}" for i in ids),
        ]
        for role, headers in callers.items():
            for url in urls:
                for _ in range(2):  # the second read is a hit where caching is on
                    cached = on.anon.get(url, headers=headers)
                    plain = off.anon.get(url, headers=headers)
                    assert cached.status_code == plain.status_code, (role, url)
                    if cached.status_code == 200:
                        assert _strip(cached.json()) == _strip(plain.json()), (role, url)
                assert plain.headers.get("x-cache-status", "BYPASS") == "BYPASS"
    finally:
        off.stop()
        on.stop()


def test_stampede_on_a_cold_key_costs_one_load(cache_stack: Stack) -> None:
    stack = cache_stack
    name = _collection(stack)
    stack.client.post(
        "/api/content", json={"collection": name, "title": "x", "status": "published"}
    )
    url = f"{stack.base_url}/api/collections/{name}/content?limit=7"

    def loads() -> int:
        stats = stack.client.get("/api/cache/stats").json()["data"]["gateway"]
        return int(stats["loads"])

    before = loads()

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            replies = await asyncio.gather(*(client.get(url) for _ in range(500)))
        return [r.status_code for r in replies]

    assert set(asyncio.run(burst())) == {200}
    assert loads() - before == 1


def test_cache_admin_needs_cache_manage(cache_stack: Stack) -> None:
    stack = cache_stack
    assert stack.anon.get("/api/cache/stats").status_code == 401
    editor = stack.user("editor")
    assert editor.client.get("/api/cache/stats").status_code == 403
    assert editor.client.delete("/api/cache/gateway").status_code == 403
    name = _collection(stack)
    url = f"/api/collections/{name}"
    stack.anon.get(url)
    assert stack.anon.get(url).headers["x-cache-status"] == "HIT"
    tagged = stack.client.post("/api/cache/invalidate", json={"tags": [f"collection:{name}"]})
    assert tagged.status_code == 200
    assert stack.anon.get(url).headers["x-cache-status"] == "MISS"
    assert stack.client.delete("/api/cache/gateway").status_code == 200
    assert stack.anon.get(url).headers["x-cache-status"] == "MISS"
    stats = stack.client.get("/api/cache/stats").json()["data"]
    assert stats["gateway"]["namespace"] == "gateway"
    assert stack.anon.get("/metrics").status_code == 401
    assert editor.client.get("/metrics").status_code == 403
    metrics = stack.client.get("/metrics")
    assert metrics.status_code == 200
    assert 'namespace="gateway"' in metrics.text


def _second_pair(
    first: Stack, tmp: Path, redis_url: str, prefix: str
) -> tuple[Service, Service, str]:
    """Another content service and gateway on the first stack's store, auth and Redis."""
    content_port, gateway_port = free_port(), free_port()
    common = {
        "HERON_DATA_DIR": str(tmp),
        "HERON_AUTH_TARGET": first.gateway.env["HERON_AUTH_TARGET"],
        "HERON_MEDIA_TARGET": first.gateway.env["HERON_MEDIA_TARGET"],
        "HERON_PLUGINS_TARGET": first.gateway.env["HERON_PLUGINS_TARGET"],
        "HERON_INTERNAL_SECRET": first.gateway.env["HERON_INTERNAL_SECRET"],
        "HERON_REDIS_URL": redis_url,
        "HERON_REDIS_PREFIX": prefix,
    }
    content = Service(
        "content2",
        [sys.executable, "-m", "heron_content"],
        {
            **common,
            "HERON_CONTENT_GRPC_PORT": str(content_port),
            "HERON_CONTENT_SEED_DEMO": "false",
        },
        tmp / "content2.log",
    )
    gateway = Service(
        "gateway2",
        [sys.executable, "-m", "heron_gateway"],
        {
            **common,
            "HERON_GATEWAY_PORT": str(gateway_port),
            "HERON_CONTENT_TARGET": f"127.0.0.1:{content_port}",
        },
        tmp / "gateway2.log",
    )
    content.start()
    gateway.start()
    url = f"http://127.0.0.1:{gateway_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return content, gateway, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("second gateway never became ready")


def test_write_on_one_process_read_on_another_is_never_stale(
    tmp_path: Path, redis_url: str
) -> None:
    prefix = f"heron-test-{uuid.uuid4().hex[:8]}"
    first = start_stack(
        tmp_path, seed=False, extra_env={"HERON_REDIS_URL": redis_url, "HERON_REDIS_PREFIX": prefix}
    )
    content2, gateway2, url2 = _second_pair(first, tmp_path, redis_url, prefix)
    try:
        name = _collection(first)
        item = first.client.post(
            "/api/content", json={"collection": name, "title": "v0", "status": "published"}
        ).json()["data"]
        item_url = f"{url2}/api/content/{item['id']}"
        list_url = f"{url2}/api/collections/{name}/content"
        stale = 0
        with httpx.Client(timeout=10) as reader:
            for round_ in range(1000):
                title = f"v{round_ + 1}"
                written = first.client.patch(f"/api/content/{item['id']}", json={"title": title})
                assert written.status_code == 200
                if reader.get(item_url).json()["data"]["title"] != title:
                    stale += 1
                if round_ % 10 == 0 and reader.get(list_url).json()["data"][0]["title"] != title:
                    stale += 1
        assert stale == 0

        # The second gateway loses its invalidation subscription: its memory tier is flushed
        # and kept short-lived until it is back, so staleness stays within a second.
        # (Only this test's subscribers: other tests share the Redis server.)
        admin = redis.Redis.from_url(redis_url)
        try:
            ours = [c for c in admin.client_list(_type="pubsub") if c["name"].startswith(prefix)]
            assert ours, "the subscribers name themselves after their channel"
            for subscriber in ours:
                admin.client_kill_filter(_id=subscriber["id"])
        finally:
            admin.close()
        for round_ in range(50):
            title = f"after-kill-{round_}"
            first.client.patch(f"/api/content/{item['id']}", json={"title": title})
            seen = httpx.get(item_url).json()["data"]["title"]
            if seen != title:
                time.sleep(1.1)
                assert httpx.get(item_url).json()["data"]["title"] == title
        time.sleep(1.5)  # resubscribed by now
        for round_ in range(100):
            title = f"back-{round_}"
            first.client.patch(f"/api/content/{item['id']}", json={"title": title})
            assert httpx.get(item_url).json()["data"]["title"] == title
    finally:
        gateway2.stop()
        content2.stop()
        first.stop()


def _redis_server(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for this test (the CI script installs it)"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")


def test_redis_killed_under_load_costs_no_read_errors(tmp_path: Path) -> None:
    port = free_port()
    server = _redis_server(port, tmp_path)
    stack = start_stack(
        tmp_path, seed=False, extra_env={"HERON_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    )
    try:
        name = _collection(stack)
        item = stack.client.post(
            "/api/content", json={"collection": name, "title": "one", "status": "published"}
        ).json()["data"]
        urls = [f"/api/content/{item['id']}", f"/api/collections/{name}/content"]
        errors: list[str] = []

        def read_for(seconds: float) -> None:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                for url in urls:
                    reply = stack.anon.get(url)
                    if reply.status_code != 200:
                        errors.append(f"{url}: {reply.status_code} {reply.text[:200]}")

        read_for(0.5)
        server.kill()
        server.wait()
        read_for(2.0)  # Redis gone: memory and the database answer
        # Writes keep working and are seen at once (one gateway, one content process).
        stack.client.patch(f"/api/content/{item['id']}", json={"title": "two"})
        assert stack.anon.get(urls[0]).json()["data"]["title"] == "two"
        server = _redis_server(port, tmp_path)
        read_for(2.0)
        assert errors == []
        # Back on Redis: a write through the API invalidates, and pages are cached again.
        stack.client.patch(f"/api/content/{item['id']}", json={"title": "three"})
        assert stack.anon.get(urls[0]).json()["data"]["title"] == "three"
        until = time.monotonic() + 5
        while stack.anon.get(urls[0]).headers["x-cache-status"] != "HIT":
            assert time.monotonic() < until, "the cache did not resume"
            time.sleep(0.1)
        keys = redis.Redis(port=port).keys("*cache*")
        assert keys, "nothing was written to the restarted Redis"
    finally:
        stack.stop()
        server.kill()
        server.wait()


def test_a_blank_query_value_is_not_served_the_page_without_it(stack: Stack) -> None:
    """`?status=` is invalid: a cached `/api/content` must not answer for it (found by
    schemathesis)."""
    for client in (stack.anon, stack.client):
        assert client.get("/api/content").status_code == 200
        assert client.get("/api/content").headers["x-cache-status"] == "HIT"
        blank = client.get("/api/content", params={"status": ""})
        assert blank.status_code == 400, blank.text
        assert blank.json()["details"][0]["field"] == "query.status"


def test_a_signed_in_callers_cache_hit_is_logged_as_that_caller(stack: Stack) -> None:
    name = _collection(stack)
    viewer = stack.user("viewer")
    path = f"/api/collections/{name}/content"
    first, second = viewer.client.get(path), viewer.client.get(path)
    assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")

    def logged() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in stack.gateway.log().splitlines() if path in line]
        return [entry for entry in lines if entry.get("path") == path]

    deadline = time.monotonic() + 5
    while len(logged()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [entry["principal"] for entry in logged()] == [viewer.id, viewer.id]


def test_pages_are_kept_under_the_services_tags_which_never_reach_the_client(
    stack: Stack,
) -> None:
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "Tagged", "status": "published"}
    ).json()["data"]
    urls = [
        f"/api/content/{item['id']}",
        f"/api/collections/{name}/content",
        f"/api/content?collection={name}",
        f"/api/collections/{name}",
        "/api/content?collection=no_such_collection_yet",
    ]
    for url in urls:
        for attempt in ("MISS", "HIT"):
            reply = stack.anon.get(url)
            assert reply.headers["x-cache-status"] == attempt, (url, reply.headers)
            assert "x-heron-cache-tags" not in reply.headers
        bypass = stack.anon.get(url, headers={"cache-control": "no-cache"})
        assert "x-heron-cache-tags" not in bypass.headers
    # The item's own write drops its page, and the listings it appears in.
    stack.client.patch(f"/api/content/{item['id']}", json={"title": "Retagged"})
    for url in urls[:3]:
        assert stack.anon.get(url).headers["x-cache-status"] == "MISS", url
    # Making the collection the "not found" page named drops that page.
    assert stack.client.post(
        "/api/collections", json={"name": "no_such_collection_yet", "schema": SCHEMA}
    ).status_code in (201, 409)
    made = stack.anon.get("/api/content?collection=no_such_collection_yet")
    assert "message" not in made.json()["meta"]


def test_no_cache_skips_every_tier_down_to_the_database(stack: Stack) -> None:
    """A change made behind the services' back shows only to a `no-cache` read: the cached
    answers of both tiers still hold the old value, the fresh one comes from the database."""
    name = unique("fresh")
    schema = {"properties": {"body": {"type": "text"}}}
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    item = stack.client.post(
        "/api/content",
        json={"collection": name, "title": "Before", "status": "published", "data": {}},
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    assert stack.anon.get(url).json()["data"]["title"] == "Before"  # both tiers filled
    content_sql(stack, "UPDATE items SET title = ? WHERE id = ?", "Behind", item["id"])
    assert stack.anon.get(url).json()["data"]["title"] == "Before"  # served from a cache
    fresh = stack.anon.get(url, headers={"cache-control": "no-cache"})
    assert fresh.headers["x-cache-status"] == "BYPASS"
    assert fresh.json()["data"]["title"] == "Behind"


@pytest.mark.timeout(300)  # 300 rounds of writes and reads, slow on a loaded machine
def test_several_gateway_workers_never_serve_a_stale_page(tmp_path: Path, redis_url: str) -> None:
    """Each worker is a process with its own page cache; the invalidation bus keeps them all
    current: a read after a write is the new data whichever worker answers it."""
    stack = start_stack(
        tmp_path,
        seed=False,
        extra_env={
            "HERON_REDIS_URL": redis_url,
            "HERON_REDIS_PREFIX": f"heron-test-{uuid.uuid4().hex[:8]}",
            "HERON_GATEWAY_WORKERS": "2",
        },
    )
    try:
        name = _collection(stack)
        item = stack.client.post(
            "/api/content", json={"collection": name, "title": "v0", "status": "published"}
        ).json()["data"]
        url = f"/api/content/{item['id']}"
        stale = 0
        sources: set[str] = set()
        for round_ in range(300):
            title = f"v{round_ + 1}"
            assert stack.client.patch(url, json={"title": title}).status_code == 200
            # Fresh connections, so the kernel spreads them over the workers.
            for _ in range(3):
                with httpx.Client(base_url=stack.base_url) as reader:
                    reply = reader.get(url)
                    sources.add(reply.headers["x-cache-status"])
                    stale += reply.json()["data"]["title"] != title
        assert stale == 0
        assert "HIT" in sources  # the pages were cached, not bypassed
    finally:
        stack.stop()


def test_several_gateway_workers_without_redis_refuse_to_start(tmp_path: Path) -> None:
    env = {
        "HERON_DATA_DIR": str(tmp_path),
        "HERON_GATEWAY_PORT": str(free_port()),
        "HERON_GATEWAY_WORKERS": "2",
        "HERON_REDIS_URL": "",
        "REDIS_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "heron_gateway"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert b"HERON_REDIS_URL" in done.stderr
