"""Collections and items through the gateway, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Stack

SCHEMA = {
    "properties": {
        "body": {"type": "richtext", "required": True},
        "rating": {"type": "integer", "minimum": 0, "maximum": 5},
        "tags": {"type": "array"},
    }
}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def assert_error(reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()
    assert error["code"] == code
    assert isinstance(error["error"], str) and error["error"]
    assert error["request_id"] == reply.headers["x-request-id"]
    assert isinstance(error["details"], list)
    return error


@pytest.fixture
def collection(stack: Stack) -> str:
    name = unique("posts")
    reply = stack.client.post(
        "/api/collections",
        json={"name": name, "display_name": "Posts", "description": "d", "schema": SCHEMA},
    )
    assert reply.status_code == 201, reply.text
    return name


def test_demo_collection_is_seeded(stack: Stack) -> None:
    reply = stack.client.get("/api/collections/blog_posts/content?meta=total")
    assert reply.status_code == 200
    body = reply.json()
    assert body["meta"]["total"] >= 3
    assert {i["collection"] for i in body["data"]} == {"blog_posts"}
    assert any(i["status"] == "published" for i in body["data"])


def test_item_lifecycle(stack: Stack, collection: str) -> None:
    c = stack.client
    created = c.post(
        "/api/content",
        json={"collectionId": collection, "title": "Café au lait!", "data": {"body": "<p>hi</p>"}},
    )
    assert created.status_code == 201, created.text
    item = created.json()["data"]
    assert created.headers["location"] == f"/api/content/{item['id']}"
    assert item["slug"] == "cafe-au-lait"
    assert item["status"] == "draft"
    assert item["version"] == 1
    assert item["published_at"] is None
    assert item["data"] == {"body": "<p>hi</p>"}

    got = c.get(f"/api/content/{item['id']}").json()["data"]
    assert got == item

    patched = c.patch(
        f"/api/content/{item['id']}", json={"data": {"rating": 4}, "status": "published"}
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()["data"]
    assert after["data"] == {"body": "<p>hi</p>", "rating": 4}
    assert after["version"] == 2
    assert after["status"] == "published"
    assert after["published_at"] >= item["created_at"]

    put = c.put(f"/api/content/{item['id']}", json={"title": "New", "data": {"body": "b"}})
    assert put.status_code == 200, put.text
    assert put.json()["data"]["data"] == {"body": "b"}
    assert put.json()["data"]["title"] == "New"
    assert c.get(f"/api/content/{item['id']}").json()["data"]["version"] == 3

    deleted = c.delete(f"/api/content/{item['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True}
    assert_error(c.get(f"/api/content/{item['id']}"), 404, "not_found")
    assert_error(c.delete(f"/api/content/{item['id']}"), 404, "not_found")


def test_list_limit_offset(stack: Stack, collection: str) -> None:
    c = stack.client
    ids = []
    for n in range(5):
        reply = c.post(
            "/api/content",
            json={"collectionId": collection, "title": f"Item {n}", "data": {"body": "x"}},
        )
        ids.append(reply.json()["data"]["id"])
    newest_first = list(reversed(ids))

    page = c.get(
        f"/api/collections/{collection}/content", params={"limit": 2, "offset": 1, "meta": "total"}
    ).json()
    assert [i["id"] for i in page["data"]] == newest_first[1:3]
    assert page["meta"] | {"timestamp": None, "next_cursor": None} == {
        "count": 2,
        "total": 5,
        "limit": 2,
        "offset": 1,
        "next_cursor": None,
        "timestamp": None,
    }
    assert page["meta"]["next_cursor"]  # more follow
    past_end = c.get(
        f"/api/collections/{collection}/content", params={"offset": 10, "meta": "total"}
    ).json()
    assert past_end["data"] == []
    assert past_end["meta"]["total"] == 5

    by_query = c.get("/api/content", params={"collection": collection, "limit": 50}).json()
    assert [i["id"] for i in by_query["data"]] == newest_first

    c.patch(f"/api/content/{ids[0]}", json={"status": "published"})
    published = c.get(
        f"/api/collections/{collection}/content", params={"status": "published"}
    ).json()
    assert [i["id"] for i in published["data"]] == [ids[0]]


def test_collections_crud(stack: Stack) -> None:
    c = stack.client
    name = unique("pages")
    created = c.post("/api/collections", json={"name": name, "schema": SCHEMA})
    assert created.status_code == 201
    coll = created.json()["data"]
    assert coll["schema"]["required"] == ["body"]
    assert coll["display_name"] == name

    assert name in [x["name"] for x in c.get("/api/collections").json()["data"]]
    assert c.get(f"/api/collections/{name}").json()["data"]["id"] == coll["id"]
    assert c.get(f"/api/collections/{coll['id']}").json()["data"]["name"] == name

    updated = c.patch(f"/api/collections/{name}", json={"display_name": "Pages"})
    assert updated.json()["data"]["display_name"] == "Pages"
    assert updated.json()["data"]["schema"] == coll["schema"]

    item = c.post("/api/content", json={"collectionId": name, "title": "t", "data": {"body": "b"}})
    assert_error(c.delete(f"/api/collections/{name}"), 409, "conflict")
    c.delete(f"/api/content/{item.json()['data']['id']}")
    assert c.delete(f"/api/collections/{name}").status_code == 200
    assert_error(c.get(f"/api/collections/{name}"), 404, "not_found")


def test_duplicate_slug_is_409_and_derived_slugs_do_not_collide(
    stack: Stack, collection: str
) -> None:
    c = stack.client
    first = c.post(
        "/api/content", json={"collectionId": collection, "title": "Hello", "data": {"body": "x"}}
    ).json()["data"]
    second = c.post(
        "/api/content", json={"collectionId": collection, "title": "Hello", "data": {"body": "x"}}
    ).json()["data"]
    assert (first["slug"], second["slug"]) == ("hello", "hello-2")
    explicit = c.post(
        "/api/content",
        json={"collectionId": collection, "title": "Other", "slug": "hello", "data": {"body": "x"}},
    )
    error = assert_error(explicit, 409, "already_exists")
    assert error["details"][0]["field"] == "slug"
    dup = c.patch(f"/api/content/{second['id']}", json={"slug": "hello"})
    assert_error(dup, 409, "already_exists")
    assert c.get(f"/api/content/{second['id']}").json()["data"]["slug"] == "hello-2"
    assert_error(c.post("/api/collections", json={"name": collection}), 409, "already_exists")


def test_bad_input_is_400_and_changes_nothing(stack: Stack, collection: str) -> None:
    c = stack.client
    before = c.get(f"/api/collections/{collection}/content?meta=total").json()["meta"]["total"]
    cases = [
        ({"collectionId": collection, "title": "t", "data": {}}, "data.body"),
        ({"collectionId": collection, "title": "t", "data": {"body": 1}}, "data.body"),
        (
            {"collectionId": collection, "title": "t", "data": {"body": "b", "rating": 9}},
            "data.rating",
        ),
        ({"collectionId": collection, "title": "t", "data": {"body": "b", "nope": 1}}, "data.nope"),
        (
            {"collectionId": collection, "title": "t", "status": "live", "data": {"body": "b"}},
            "status",
        ),
        (
            {"collectionId": collection, "title": "t", "slug": "Bad Slug", "data": {"body": "b"}},
            "slug",
        ),
        ({"collectionId": collection, "title": "", "data": {"body": "b"}}, "title"),
        (
            {"collectionId": collection, "title": "t", "data": {"body": "b"}, "role": "admin"},
            "role",
        ),
        ({"title": "t", "data": {"body": "b"}}, "collectionId"),
    ]
    for body, field in cases:
        error = assert_error(c.post("/api/content", json=body), 400, "invalid_argument")
        assert field in [d["field"] for d in error["details"]], (body, error)
    assert_error(
        c.post("/api/content", json={"collectionId": "missing_coll", "title": "t"}),
        404,
        "not_found",
    )
    malformed = c.post(
        "/api/content", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert_error(malformed, 400, "invalid_argument")
    assert_error(c.get("/api/content", params={"limit": "x"}), 400, "invalid_argument")
    assert_error(c.get("/api/content", params={"limit": 5000}), 400, "invalid_argument")
    assert_error(c.get("/api/content", params={"offset": -1}), 400, "invalid_argument")
    bad_schema = c.post(
        "/api/collections",
        json={"name": unique("x"), "schema": {"properties": {"a": {"type": "?"}}}},
    )
    assert assert_error(bad_schema, 400, "invalid_argument")["details"][0]["field"] == (
        "schema.properties.a.type"
    )
    assert_error(c.post("/api/collections", json={"name": "Bad Name"}), 400, "invalid_argument")
    after = c.get(f"/api/collections/{collection}/content?meta=total").json()["meta"]["total"]
    assert after == before


def test_failed_update_leaves_item_unchanged(stack: Stack, collection: str) -> None:
    c = stack.client
    item = c.post(
        "/api/content", json={"collectionId": collection, "title": "Keep", "data": {"body": "b"}}
    ).json()["data"]
    assert_error(
        c.patch(f"/api/content/{item['id']}", json={"title": "Changed", "data": {"rating": "x"}}),
        400,
        "invalid_argument",
    )
    stale = c.patch(f"/api/content/{item['id']}", json={"title": "Changed", "version": 7})
    assert_error(stale, 409, "conflict")
    assert c.get(f"/api/content/{item['id']}").json()["data"] == item
    fresh = c.patch(f"/api/content/{item['id']}", json={"title": "Changed", "version": 1})
    assert fresh.json()["data"]["version"] == 2


def test_idempotency_key_makes_create_safe_to_repeat(stack: Stack, collection: str) -> None:
    c = stack.client
    body = {"collectionId": collection, "title": "Once", "data": {"body": "b"}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = c.post("/api/content", json=body, headers=key)
    again = c.post("/api/content", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    listed = c.get(f"/api/collections/{collection}/content?meta=total").json()
    assert listed["meta"]["total"] == 1


def test_request_id_reaches_the_service_log(stack: Stack, collection: str) -> None:
    request_id = uuid.uuid4().hex
    created = stack.client.post(
        "/api/content",
        json={"collectionId": collection, "title": "Traced", "data": {"body": "b"}},
        headers={"X-Request-Id": request_id},
    )
    item_id = created.json()["data"]["id"]
    lines = [line for line in stack.content.log().splitlines() if item_id in line]
    assert lines and all(f'"request_id":"{request_id}"' in line for line in lines)


def test_health_ready_openapi_docs(stack: Stack) -> None:
    c = stack.client
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/ready").json() == {
        "status": "ready",
        "checks": {
            "content": "serving",
            "auth": "serving",
            "media": "serving",
            "plugins": "serving",
            "permissions": "synced",
        },
    }
    spec = c.get("/openapi.json").json()
    for path in (
        "/api/collections",
        "/api/collections/{name}",
        "/api/content",
        "/api/content/{item_id}",
        "/api/collections/{name}/content",
        "/health",
        "/ready",
    ):
        assert path in spec["paths"], path
    assert "ItemOut" in spec["components"]["schemas"]
    docs = c.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
