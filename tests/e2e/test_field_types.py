"""The content model through the gateway: field types and options on real writes, on SQLite
and PostgreSQL (every type's accept and refuse cases: tests/unit/content/test_field_types.py)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import assert_error, unique


def _collection(stack: Stack, schema: dict[str, Any], name: str = "") -> str:
    name = name or unique("model")
    reply = stack.client.post("/api/collections", json={"name": name, "schema": schema})
    assert reply.status_code == 201, reply.text
    return name


def _create(stack: Stack, collection: str, data: dict[str, Any], **extra: Any) -> Any:
    return stack.client.post(
        "/api/content",
        json={
            "collection": collection,
            "title": f"t {uuid.uuid4().hex[:6]}",
            "data": data,
            **extra,
        },
    )


def test_values_are_checked_and_stored_normalized(stack: Stack) -> None:
    name = _collection(
        stack,
        {
            "properties": {
                "body": {"type": "string", "format": "richtext"},
                "at": {"type": "datetime"},
                "price": {"type": "number", "minimum": 0},
                "site": {"type": "url"},
                "seo": {
                    "type": "object",
                    "properties": {"title": {"type": "string", "maxLength": 10}},
                },
                "tags": {"type": "array", "items": {"type": "string", "minLength": 2}},
                "views": {"type": "integer", "default": 0},
                "code": {"type": "string", "readonly": True},
                "kind": {"type": "select", "options": ["news", "essay"]},
            }
        },
    )
    created = _create(
        stack,
        name,
        {
            "body": '<p>Hi<script>alert(1)</script><img src="a.png" onerror="steal()"></p>',
            "at": "2024-05-31T23:30:00-02:00",
            "price": 9.5,
            "site": "https://example.com",
            "code": "A1",
            "kind": "news",
        },
    )
    assert created.status_code == 201, created.text
    item = created.json()["data"]
    data = stack.anon.get(f"/api/content/{item['id']}", headers={"cache-control": "no-cache"})
    stored = stack.client.get(f"/api/content/{item['id']}").json()["data"]["data"]
    assert "<script" not in stored["body"] and "onerror" not in stored["body"]
    assert stored["at"] == "2024-06-01T01:30:00.000Z"
    assert stored["views"] == 0  # the default
    assert data.status_code == 404  # a draft is not public
    bad = _create(
        stack,
        name,
        {
            "price": -1,
            "site": "javascript:alert(1)",
            "seo": {"title": "far too long a title"},
            "tags": ["ok", "x"],
            "kind": "poem",
            "at": "yesterday",
        },
    )
    error = assert_error(bad, 400, "invalid_argument")
    assert {d["field"] for d in error["details"]} == {
        "data.price",
        "data.site",
        "data.seo.title",
        "data.tags.1",
        "data.kind",
        "data.at",
    }
    assert next(d for d in error["details"] if d["field"] == "data.price")["message"] == (
        "must be at least 0"
    )
    changed = stack.client.patch(f"/api/content/{item['id']}", json={"data": {"code": "B2"}})
    assert assert_error(changed, 400, "invalid_argument")["details"] == [
        {"field": "data.code", "message": "is read-only"}
    ]
    kept = stack.client.patch(f"/api/content/{item['id']}", json={"data": {"price": 3}})
    assert kept.status_code == 200 and kept.json()["data"]["data"]["code"] == "A1"


def test_references_must_point_at_items_the_writer_may_see(stack: Stack) -> None:
    authors = _collection(stack, {"properties": {"name": {"type": "string"}}})
    posts = _collection(
        stack, {"properties": {"author": {"type": "reference", "collection": authors}}}
    )
    jane = _create(stack, authors, {"name": "Jane"}, status="published").json()["data"]
    assert _create(stack, posts, {"author": jane["id"]}).status_code == 201
    missing = _create(stack, posts, {"author": str(uuid.uuid4())})
    assert assert_error(missing, 400, "invalid_argument")["details"][0]["field"] == "data.author"
    post = _create(stack, posts, {}, status="published").json()["data"]
    wrong_collection = _create(stack, posts, {"author": post["id"]})
    assert (
        "must be an item of"
        in assert_error(wrong_collection, 400, "invalid_argument")["details"][0]["message"]
    )
    # An author cannot point at (and so learn of) a draft of someone else's.
    hidden = _create(stack, authors, {"name": "Draft author"}).json()["data"]
    writer = stack.user("author")
    probe = writer.client.post(
        "/api/content",
        json={"collection": posts, "title": "probe", "data": {"author": hidden["id"]}},
    )
    assert assert_error(probe, 400, "invalid_argument")["details"][0]["message"].startswith(
        "no item"
    )
    nowhere = stack.client.post(
        "/api/collections",
        json={
            "name": unique("dangling"),
            "schema": {"properties": {"x": {"type": "reference", "collection": "no_such_one"}}},
        },
    )
    assert assert_error(nowhere, 400, "invalid_argument")["details"][0]["field"] == "schema"


def test_unique_fields_are_enforced_by_the_store(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"sku": {"type": "string", "unique": True}}})
    first = _create(stack, name, {"sku": "X-1"}).json()["data"]
    again = _create(stack, name, {"sku": "X-1"})
    assert assert_error(again, 409, "already_exists")["details"] == [
        {"field": "data.sku", "message": "already used by another item of this collection"}
    ]
    second = _create(stack, name, {"sku": "X-2"}).json()["data"]
    taken = stack.client.patch(f"/api/content/{second['id']}", json={"data": {"sku": "X-1"}})
    assert_error(taken, 409, "already_exists")
    # A deleted item, or one that moved to another value, frees its value.
    assert stack.client.patch(
        f"/api/content/{first['id']}", json={"data": {"sku": "X-9"}}
    ).is_success
    assert _create(stack, name, {"sku": "X-1"}).status_code == 201
    assert stack.client.delete(f"/api/content/{second['id']}").is_success
    assert _create(stack, name, {"sku": "X-2"}).status_code == 201


def test_a_field_becomes_unique_only_when_its_values_are(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"code": {"type": "string"}}})
    for code in ("a", "a", "b"):
        assert _create(stack, name, {"code": code}).status_code == 201
    unique_schema = {"schema": {"properties": {"code": {"type": "string", "unique": True}}}}
    refused = stack.client.patch(f"/api/collections/{name}", json=unique_schema)
    error = assert_error(refused, 409, "conflict")
    assert error["details"] == [
        {"field": "schema.properties.code.unique", "message": "2 items share a value"}
    ]
    listed = stack.client.get(f"/api/collections/{name}/content").json()["data"]
    duplicate = next(i for i in listed if i["data"]["code"] == "a")
    assert stack.client.delete(f"/api/content/{duplicate['id']}").is_success
    assert stack.client.patch(f"/api/collections/{name}", json=unique_schema).status_code == 200
    assert_error(_create(stack, name, {"code": "b"}), 409, "already_exists")


def test_schemas_that_cannot_hold_are_refused_with_the_path(stack: Stack) -> None:
    cases = {
        "schema.properties.price.minimum": {"type": "number", "minimum": 5, "maximum": 1},
        "schema.properties.kind.default": {"type": "select", "options": ["a"], "default": "b"},
        "schema.properties.code.pattern": {"type": "string", "pattern": "(unclosed"},
        "schema.properties.n.required": {"type": "integer", "required": "yes"},
        "schema.properties.count": {"type": "integer", "minLength": 1},
    }
    for path, definition in cases.items():
        field = path.split(".")[2]
        reply = stack.client.post(
            "/api/collections",
            json={"name": unique("bad"), "schema": {"properties": {field: definition}}},
        )
        assert path in {d["field"] for d in assert_error(reply, 400, "invalid_argument")["details"]}
