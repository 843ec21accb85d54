"""Schema changes through the gateway, on SQLite and PostgreSQL: adding a field is free; removing
or retyping one that holds data needs `"confirm": true`; no item is ever left that the schema
refuses; the collection's version counts the changes; and one slug rule holds everywhere."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import assert_error
from tests.e2e.test_field_types import _collection, _create

NO_CACHE = {"cache-control": "no-cache"}


def _published(stack: Stack, name: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = _create(stack, name, data, status="published")
    assert reply.status_code == 201, reply.text
    item: dict[str, Any] = reply.json()["data"]
    return item


def _change(stack: Stack, name: str, properties: dict[str, Any], **extra: Any) -> Any:
    return stack.client.patch(
        f"/api/collections/{name}", json={"schema": {"properties": properties, **extra}}
    )


def test_adding_a_field_is_free_and_every_change_bumps_the_version(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"body": {"type": "text"}}})
    item = _published(stack, name, {"body": "hello"})
    version = stack.client.get(f"/api/collections/{name}").json()["data"]["version"]
    added = _change(stack, name, {"body": {"type": "text"}, "extra": {"type": "integer"}})
    assert added.status_code == 200, added.text
    assert added.json()["data"]["version"] == version + 1
    same = _change(stack, name, {"body": {"type": "text"}, "extra": {"type": "integer"}})
    assert same.json()["data"]["version"] == version + 1  # nothing changed: no new version
    renamed = stack.client.patch(f"/api/collections/{name}", json={"displayName": "Posts"})
    assert renamed.json()["data"]["version"] == version + 2
    now = stack.client.get(f"/api/content/{item['id']}").json()["data"]
    assert now["version"] == item["version"] and now["data"] == {"body": "hello"}


def test_removing_a_field_with_data_needs_confirmation(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"body": {"type": "text"}, "tags": {"type": "json"}}})
    holders = [_published(stack, name, {"body": "b", "tags": [n]}) for n in range(3)]
    bare = _published(stack, name, {"body": "no tags"})
    url = f"/api/content/{holders[0]['id']}"
    assert stack.anon.get(url).json()["data"]["data"]["tags"] == [0]  # cached now
    refused = assert_error(_change(stack, name, {"body": {"type": "text"}}), 409, "conflict")
    assert "3 item(s)" in refused["error"] and '"confirm": true' in refused["error"]
    assert refused["details"] == [
        {"field": "schema.properties.tags", "message": "3 item(s) would lose it"}
    ]
    schema = stack.client.get(f"/api/collections/{name}").json()["data"]["schema"]
    assert "tags" in schema["properties"]  # nothing changed
    assert stack.client.get(url).json()["data"]["data"]["tags"] == [0]

    done = stack.client.patch(
        f"/api/collections/{name}",
        json={"schema": {"properties": {"body": {"type": "text"}}}, "confirm": True},
    )
    assert done.status_code == 200, done.text
    now = stack.anon.get(url).json()["data"]
    assert now["data"] == {"body": "b"} and now["version"] == holders[0]["version"] + 1
    untouched = stack.client.get(f"/api/content/{bare['id']}").json()["data"]
    assert untouched["version"] == bare["version"]  # it held no tags: not rewritten
    history = stack.client.get(f"{url}/revisions").json()["data"]
    assert history[0]["action"] == "migrated" and history[0]["data"] == {"body": "b"}
    assert history[1]["data"] == {"body": "b", "tags": [0]}  # the old value is kept
    listing = stack.anon.get(f"/api/collections/{name}/content").json()["data"]
    assert all("tags" not in i["data"] for i in listing)
    # Not stranded: the item takes an ordinary change.
    assert stack.client.patch(url, json={"data": {"body": "again"}}).status_code == 200


def test_a_retype_keeps_values_that_fit_and_drops_the_rest_once_confirmed(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"when": {"type": "string"}}})
    fits = _published(stack, name, {"when": "2024-05-31T12:00:00+02:00"})
    misfit = _published(stack, name, {"when": "next tuesday"})
    retyped = {"when": {"type": "datetime"}}
    refused = assert_error(_change(stack, name, retyped), 409, "conflict")
    assert "2 item(s)" in refused["error"]
    assert {d["message"] for d in refused["details"]} == {
        "1 item(s) would lose it",
        "1 item(s) would be converted",
    }
    assert stack.client.patch(
        f"/api/collections/{name}", json={"schema": {"properties": retyped}, "confirm": True}
    ).is_success
    get = stack.client.get
    assert get(f"/api/content/{fits['id']}").json()["data"]["data"] == {
        "when": "2024-05-31T10:00:00.000Z"
    }
    assert get(f"/api/content/{misfit['id']}").json()["data"]["data"] == {}
    assert stack.client.patch(
        f"/api/content/{misfit['id']}", json={"data": {"when": "2025-01-01"}}
    ).is_success


def test_a_tighter_rule_or_a_new_required_field(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"title2": {"type": "string"}}})
    long = _published(stack, name, {"title2": "a rather long value"})
    _published(stack, name, {})
    tighter = {"title2": {"type": "string", "maxLength": 5}}
    refused = assert_error(_change(stack, name, tighter), 409, "conflict")
    assert refused["details"] == [
        {"field": "schema.properties.title2", "message": "1 item(s) would lose it"}
    ]
    # A field made required that some items lack: no confirmation can fix that, a default can.
    required = {"title2": {"type": "string"}, "rank": {"type": "integer"}}
    unfixable = _change(stack, name, required, required=["rank"])
    body = assert_error(unfixable, 409, "conflict")
    assert "give the field a default" in body["error"]
    assert body["details"] == [
        {"field": "schema.properties.rank", "message": "2 item(s) have no value"}
    ]
    confirmed = stack.client.patch(
        f"/api/collections/{name}",
        json={"schema": {"properties": required, "required": ["rank"]}, "confirm": True},
    )
    assert_error(confirmed, 409, "conflict")
    required["rank"]["default"] = 1
    filled = _change(stack, name, required, required=["rank"])
    assert filled.status_code == 200, filled.text  # no data lost: no confirmation needed
    assert stack.client.get(f"/api/content/{long['id']}").json()["data"]["data"] == {
        "title2": "a rather long value",
        "rank": 1,
    }


def test_a_retype_to_reference_drops_ids_of_missing_items(stack: Stack) -> None:
    target = _collection(stack, {"properties": {}})
    other = _published(stack, target, {})
    name = _collection(stack, {"properties": {"link": {"type": "string"}}})
    good = _published(stack, name, {"link": other["id"]})
    bad = _published(stack, name, {"link": "0190c8b6-0000-7000-8000-000000000000"})
    retyped = {"link": {"type": "reference", "collection": target}}
    done = stack.client.patch(
        f"/api/collections/{name}", json={"schema": {"properties": retyped}, "confirm": True}
    )
    assert done.status_code == 200, done.text
    assert stack.client.get(f"/api/content/{good['id']}").json()["data"]["data"] == {
        "link": other["id"]
    }
    assert stack.client.get(f"/api/content/{bad['id']}").json()["data"]["data"] == {}


def test_one_slug_rule_with_one_message(stack: Stack) -> None:
    name = _collection(stack, {"properties": {"handle": {"type": "slug"}}})
    for slug in ("café", "日本", "привет-мир"):
        made = _create(stack, name, {"handle": slug}, slug=slug)
        assert made.status_code == 201, made.text
        assert made.json()["data"]["slug"] == slug
    messages = set()
    for bad in ("Café", "a--b"):
        refused = assert_error(_create(stack, name, {}, slug=bad), 400, "invalid_argument")
        as_field = assert_error(_create(stack, name, {"handle": bad}), 400, "invalid_argument")
        messages |= {
            refused["details"][0]["message"].split(", e.g.")[0],
            as_field["details"][0]["message"].split(", e.g.")[0],
        }
    assert messages == {
        "use lowercase letters (of any script) and digits, with single hyphens between words"
    }
