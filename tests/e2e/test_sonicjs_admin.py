"""SonicJS's admin JSON routes through the gateway: `/admin/api/collections` and `/admin/cache`.

One stack on Redis for the module (the cache's entries and the content service's are visible to
the admin routes only through Redis), and one without it for what the gateway does alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import Stack, start_stack

SIGN_IN = "/auth/login?error=Please%20login%20to%20access%20the%20admin%20area"
SCHEMA = {
    "properties": {
        "body": {"type": "richtext", "title": "Body"},
        "rating": {"type": "number", "minimum": 0, "maximum": 5},
    },
    "required": ["body"],
}
COLLECTION_FIELDS = {
    "id",
    "name",
    "display_name",
    "displayName",
    "description",
    "schema",
    "is_active",
    "managed",
    "field_count",
    "created_at",
    "updated_at",
}
STATS_FIELDS = {
    "memoryHits",
    "memoryMisses",
    "kvHits",
    "kvMisses",
    "dbHits",
    "totalRequests",
    "hitRate",
    "memorySize",
    "entryCount",
}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("admin"), extra_env={"HERON_REDIS_URL": redis_url}
    )
    yield running
    running.stop()


def _name() -> str:
    return f"adm_{uuid.uuid4().hex[:8]}"


def _ok(reply: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The body of a SonicJS success answer."""
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["success"] is True
    assert body["timestamp"].endswith("Z")
    return body


def _error(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The body of a SonicJS admin error: `success: false` and a message in `error`."""
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["success"] is False and isinstance(body["error"], str), body
    return body


def _create(stack: Stack, **extra: Any) -> dict[str, Any]:
    body = {"name": _name(), "displayName": "Admin Made", **extra}
    return _ok(stack.client.post("/admin/api/collections", json=body), 201)


def _gateway_stats(stack: Stack) -> dict[str, Any]:
    stats: dict[str, Any] = _ok(stack.client.get("/admin/cache/stats"))["data"]["gateway"]
    return stats


def _cache_status(stack: Stack, url: str) -> str:
    reply = stack.anon.get(url)
    assert reply.status_code == 200, reply.text
    return reply.headers["x-cache-status"]


def _cached(stack: Stack, url: str) -> None:
    """Read a public page twice: the second read is a cache hit."""
    stack.anon.get(url)
    assert _cache_status(stack, url) == "HIT"


def test_the_admin_area_is_for_signed_in_callers(admin: Stack) -> None:
    for url in ("/admin/api/collections", "/admin/cache/stats"):
        body = _error(admin.anon.get(url), 401)
        assert body["error"] == "Authentication required"
        browser = admin.anon.get(url, headers={"accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 302
        assert browser.headers["location"] == SIGN_IN
    # Anonymous callers may read collections through /api, never through the admin area.
    assert admin.anon.get("/api/collections").status_code == 200
    invalid = httpx.Client(base_url=admin.base_url, headers={"authorization": "Bearer nope"})
    with invalid:
        assert invalid.get("/admin/api/collections").status_code == 401
        redirected = invalid.get("/admin/api/collections", headers={"accept": "text/html"})
        assert redirected.status_code == 302
    # Writes without credentials are refused before their body is read.
    # (by the route guard, still in the admin area's error shape).
    _error(admin.anon.post("/admin/api/collections", json={"name": "x"}), 401)
    _error(admin.anon.post("/admin/cache/clear"), 401)


def test_a_viewer_reads_collections_but_changes_nothing_and_cannot_manage_the_cache(
    admin: Stack,
) -> None:
    viewer = admin.user("viewer").client
    name = _create(admin)["name"]
    assert _ok(viewer.get("/admin/api/collections"))["count"] >= 1
    assert _ok(viewer.get(f"/admin/api/collections/{name}"))["name"] == name
    refused = [
        viewer.post("/admin/api/collections", json={"name": _name(), "displayName": "V"}),
        viewer.patch(f"/admin/api/collections/{name}", json={"display_name": "V"}),
        viewer.delete(f"/admin/api/collections/{name}"),
        viewer.get("/admin/cache/stats"),
        viewer.get("/admin/cache/browser"),
        viewer.post("/admin/cache/clear"),
        viewer.post("/admin/cache/invalidate", json={"pattern": "*"}),
        viewer.post("/admin/cache/warm"),
    ]
    for reply in refused:
        _error(reply, 403)
    assert _ok(admin.client.get(f"/admin/api/collections/{name}"))["display_name"] == "Admin Made"


def test_list_and_get_answer_with_sonicjs_fields(admin: Stack) -> None:
    made = _create(admin, displayName="Searchable Things", schema=SCHEMA)
    listed = _ok(admin.client.get("/admin/api/collections"))
    assert listed["count"] == len(listed["data"]) >= 4  # the seeded three and this one
    assert listed["data"][0]["name"] == made["name"]  # newest first, as SonicJS's admin lists
    for c in listed["data"]:
        assert COLLECTION_FIELDS <= set(c)
        assert c["is_active"] is True and isinstance(c["managed"], bool)
        assert c["field_count"] == len(c["schema"].get("properties", {}))
        assert c["displayName"] == c["display_name"]
    found = _ok(
        admin.client.get(
            "/admin/api/collections", params={"search": "SEARCHABLE", "includeInactive": "true"}
        )
    )
    assert [c["name"] for c in found["data"]] == [made["name"]] and found["count"] == 1
    assert admin.client.get("/admin/api/collections", params={"active": "1"}).status_code == 400

    for key in (made["name"], made["id"]):
        one = _ok(admin.client.get(f"/admin/api/collections/{key}"))
        assert one["id"] == made["id"] and one["field_count"] == 2
        assert one["data"] == {
            k: v for k, v in one.items() if k not in ("success", "data", "timestamp")
        }
        fields = {f["field_name"]: f for f in one["fields"]}
        assert fields["body"] == {
            "id": f"{made['id']}:body",
            "field_name": "body",
            "field_type": "richtext",
            "field_label": "Body",
            "field_options": {},
            "field_order": 1,
            "is_required": True,
        }
        assert fields["rating"]["field_label"] == "rating"
        assert fields["rating"]["field_options"] == {"minimum": 0, "maximum": 5}
        assert fields["rating"]["is_required"] is False and fields["rating"]["field_order"] == 2
        assert one["data"]["fields"] == one["fields"]
    missing = _error(admin.client.get("/admin/api/collections/no_such_thing"), 404)
    assert missing["error"] == "Collection not found"


def test_create_update_and_delete_are_heron_collections(admin: Stack) -> None:
    name = _name()
    created = _ok(
        admin.client.post(
            "/admin/api/collections",
            json={"name": name, "display_name": "Snake Case", "description": "d"},
        ),
        201,
    )
    assert (created["name"], created["displayName"], created["description"]) == (
        name,
        "Snake Case",
        "d",
    )
    assert created["id"] == created["data"]["id"] and isinstance(created["created_at"], int)
    assert admin.anon.get(f"/api/collections/{name}").json()["data"]["display_name"] == (
        "Snake Case"
    )
    unnamed = _error(admin.client.post("/admin/api/collections", json={"name": _name()}), 400)
    assert unnamed["details"][0]["field"] == "displayName"
    taken = admin.client.post("/admin/api/collections", json={"name": name, "displayName": "T"})
    _error(taken, 409)

    url = f"/admin/api/collections/{name}"
    assert _error(admin.client.patch(url, json={}), 400)["error"] == "No fields to update"
    inactive = _error(admin.client.patch(url, json={"is_active": False}), 400)
    assert "cannot be deactivated" in inactive["error"]
    unchanged = _ok(admin.client.patch(url, json={"is_active": True}))
    assert unchanged["data"]["display_name"] == "Snake Case"
    updated = _ok(admin.client.patch(url, json={"display_name": "Renamed", "schema": SCHEMA}))
    assert updated["message"] == "Collection updated successfully"
    assert updated["data"]["display_name"] == "Renamed" and updated["data"]["field_count"] == 2
    assert admin.anon.get(f"/api/collections/{name}").json()["data"]["display_name"] == "Renamed"
    _ok(admin.client.patch(url, json={"displayName": "Camel"}))
    assert admin.client.get(f"/api/collections/{name}").json()["data"]["display_name"] == "Camel"

    full = _create(admin)["name"]
    admin.client.post("/api/content", json={"collection": full, "title": "keeps it"})
    _error(admin.client.delete(f"/admin/api/collections/{full}"), 409)
    deleted = _ok(admin.client.delete(url))
    assert deleted["message"] == "Collection deleted successfully"
    assert admin.anon.get(f"/api/collections/{name}").status_code == 404
    _error(admin.client.delete(url), 404)


def test_clear_empties_the_caches(admin: Stack) -> None:
    url = f"/api/collections/{_create(admin)['name']}"
    _cached(admin, url)
    cleared = _ok(admin.client.post("/admin/cache/clear"))
    assert cleared["message"] == "All cache entries cleared"
    assert _cache_status(admin, url) == "MISS"
    assert _cache_status(admin, url) == "HIT"
    one = _ok(admin.client.post("/admin/cache/clear/gateway"))
    assert (one["message"], one["namespace"]) == ("Cache cleared for namespace: gateway", "gateway")
    assert _cache_status(admin, url) == "MISS"
    _ok(admin.client.post("/admin/cache/clear/content"))
    content = _ok(admin.client.get("/admin/cache/stats/content"))["data"]["stats"]
    assert content["entryCount"] == 0
    unknown = _error(admin.client.post("/admin/cache/clear/user"), 404)
    assert unknown["error"] == "Unknown namespace: user"


def test_invalidate_drops_only_what_the_pattern_matches(admin: Stack) -> None:
    first, second = _create(admin)["name"], _create(admin)["name"]
    for name in (first, second):
        _cached(admin, f"/api/collections/{name}")
    body = {"pattern": f"*/api/collections/{first}?*", "namespace": "gateway"}
    done = _ok(admin.client.post("/admin/cache/invalidate", json=body))
    assert done["invalidated"] == 1
    assert (done["pattern"], done["namespace"]) == (body["pattern"], "gateway")
    assert _cache_status(admin, f"/api/collections/{first}") == "MISS"
    assert _cache_status(admin, f"/api/collections/{second}") == "HIT"
    everywhere = _ok(admin.client.post("/admin/cache/invalidate", json={"pattern": f"*{second}*"}))
    assert everywhere["namespace"] == "all" and everywhere["invalidated"] >= 1
    assert _cache_status(admin, f"/api/collections/{second}") == "MISS"
    no_pattern = _error(admin.client.post("/admin/cache/invalidate", json={}), 400)
    assert no_pattern["error"] == "Pattern is required"
    elsewhere = {"pattern": "*", "namespace": "media"}
    _error(admin.client.post("/admin/cache/invalidate", json=elsewhere), 404)


def test_statistics_follow_the_requests(admin: Stack) -> None:
    url = f"/api/collections/{_create(admin)['name']}"
    _cached(admin, url)
    before = _gateway_stats(admin)
    assert STATS_FIELDS <= set(before) and before["heron"]["namespace"] == "gateway"
    for _ in range(5):
        assert _cache_status(admin, url) == "HIT"
    assert _cache_status(admin, f"/api/collections/{_create(admin)['name']}") == "MISS"
    after = _gateway_stats(admin)
    assert after["totalRequests"] - before["totalRequests"] == 6
    assert after["memoryHits"] - before["memoryHits"] == 5
    assert after["memoryMisses"] - before["memoryMisses"] == 1
    assert after["dbHits"] - before["dbHits"] == 1
    assert after["hitRate"] == round(
        (after["memoryHits"] + after["kvHits"]) / after["totalRequests"] * 100, 2
    )
    one = _ok(admin.client.get("/admin/cache/stats/gateway"))["data"]
    assert one["namespace"] == "gateway" and STATS_FIELDS <= set(one["stats"])
    assert one["config"]["ttl"] > 0 and one["config"]["memoryEnabled"] is True
    assert one["config"]["kvEnabled"] is True
    assert _error(admin.client.get("/admin/cache/stats/session"), 404)["error"] == (
        "Unknown namespace: session"
    )

    health = _ok(admin.client.get("/admin/cache/health"))["data"]
    assert health["status"] in ("healthy", "warning", "unhealthy")
    assert {n["namespace"] for n in health["namespaces"]} == {"gateway", "content"}
    assert all(n["memoryUsage"].endswith("%") for n in health["namespaces"])
    overview = _ok(admin.client.get("/admin/cache/analytics"))["data"]["overview"]
    assert overview["totalRequests"] >= after["totalRequests"]
    assert overview["totalHits"] + overview["totalMisses"] == overview["totalRequests"]
    trends = _ok(admin.client.get("/admin/cache/analytics/trends"))["data"]
    assert len(trends["trends"]) == 1 and "snapshot" in trends["note"]
    top = _ok(admin.client.get("/admin/cache/analytics/top-keys", params={"limit": 5}))["data"]
    assert top["topKeys"] == [] and top["note"]


def test_the_browser_shows_keys_and_metadata_never_values(admin: Stack) -> None:
    name = _create(admin)["name"]
    secret = f"draft-secret-{uuid.uuid4().hex}"
    admin.client.post("/api/content", json={"collection": name, "title": secret})
    listing = f"/api/collections/{name}/content"
    admin.client.get(listing)  # the admin's page and the content service's rows hold the draft
    assert secret in admin.client.get(listing).text

    reply = admin.client.get("/admin/cache/browser", params={"search": name.upper()})
    browsed = _ok(reply)["data"]
    assert secret not in reply.text
    assert {e["namespace"] for e in browsed["entries"]} == {"gateway", "content"}
    assert browsed["total"] == browsed["showing"] == len(browsed["entries"])
    assert (browsed["namespace"], browsed["sortBy"]) == ("all", "age")
    for entry in browsed["entries"]:
        assert name in entry["key"]
        assert entry["size"] > 0 and 0 < entry["ttl"] <= 400
        assert set(entry) == {"namespace", "key", "size", "ttl", "expiresAt", "parsed"}
    page = next(e for e in browsed["entries"] if e["namespace"] == "gateway")
    assert page["parsed"]["request"].startswith(listing)

    detail_reply = admin.client.get(f"/admin/cache/browser/gateway/{quote(page['key'], safe='')}")
    detail = _ok(detail_reply)["data"]
    assert secret not in detail_reply.text
    assert (detail["key"], detail["size"]) == (page["key"], page["size"])
    assert detail["expiresAt"].endswith("Z")
    gone = _error(admin.client.get("/admin/cache/browser/content/no-such-key"), 404)
    assert gone["error"] == "Cache entry not found or expired"
    _error(admin.client.get("/admin/cache/browser/media/x"), 404)

    by_size = _ok(
        admin.client.get(
            "/admin/cache/browser", params={"namespace": "content", "sort": "size", "limit": 2}
        )
    )["data"]
    sizes = [e["size"] for e in by_size["entries"]]
    assert sizes == sorted(sizes, reverse=True) and by_size["showing"] <= 2
    assert {e["namespace"] for e in by_size["entries"]} <= {"content"}
    bad_sort = admin.client.get("/admin/cache/browser", params={"sort": "hits"})
    assert bad_sort.status_code == 400


def test_warming_fills_the_content_service_cache(admin: Stack) -> None:
    _ok(admin.client.post("/admin/cache/clear/content"))

    def content_keys() -> set[str]:
        reply = admin.client.get("/admin/cache/browser", params={"namespace": "content"})
        return {e["key"] for e in _ok(reply)["data"]["entries"]}

    assert content_keys() == set()
    collections = _ok(admin.client.get("/admin/api/collections"))["count"]
    warmed = _ok(admin.client.post("/admin/cache/warm"))
    assert warmed["message"] == "Cache warming completed"
    assert (warmed["warmed"], warmed["errors"]) == (1 + collections, 0)
    assert warmed["details"] == [{"namespace": "content", "count": 1 + collections}]
    keys = content_keys()
    assert "collections:list" in keys
    assert sum(k.startswith("items:") for k in keys) == collections
    content = _ok(admin.client.get("/admin/cache/stats/content"))["data"]["stats"]
    assert content["entryCount"] >= len(keys)

    again = _ok(admin.client.post("/admin/cache/warm/content"))
    assert again["message"] == f"Warmed {1 + collections} entries in namespace: content"
    assert (again["namespace"], again["count"]) == ("content", 1 + collections)
    pages = _ok(admin.client.post("/admin/cache/warm/gateway"))
    assert pages["count"] == 0 and pages["note"]
    entries = {"entries": [{"key": "k", "value": "v"}]}
    refused = _error(admin.client.post("/admin/cache/warm/content", json=entries), 400)
    assert "only what its services loaded" in refused["error"]
    _error(admin.client.post("/admin/cache/warm/user"), 404)


def test_without_redis_admin_writes_still_refresh_this_gateways_pages(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, seed=False)
    try:
        _cached(stack, "/api/collections")
        name = _create(stack)["name"]
        listed = stack.anon.get("/api/collections")
        assert listed.headers["x-cache-status"] == "MISS"
        assert name in {c["name"] for c in listed.json()["data"]}
        _cached(stack, "/api/collections")
        _ok(stack.client.patch(f"/admin/api/collections/{name}", json={"displayName": "New"}))
        assert stack.anon.get("/api/collections").json()["data"][0]["display_name"] == "New"

        browsed = _ok(stack.client.get("/admin/cache/browser"))["data"]
        assert browsed["entries"] == [] and "Redis is not configured" in browsed["note"]
        cleared = _ok(stack.client.post("/admin/cache/clear"))
        assert "cannot be reached" in cleared["note"]
        assert _cache_status(stack, "/api/collections") == "MISS"
        invalidated = _ok(stack.client.post("/admin/cache/invalidate", json={"pattern": "*"}))
        assert invalidated["invalidated"] is None
        gateway = _gateway_stats(stack)
        assert gateway["entryCount"] == gateway["heron"]["memory"]["entries"]
    finally:
        stack.stop()
