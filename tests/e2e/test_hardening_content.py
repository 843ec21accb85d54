"""Hardening of item writes: idempotency keys per caller, last-write-wins, JSON Merge Patch."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import Stack


@pytest.fixture
def notes(stack: Stack) -> dict[str, Any]:
    fields: dict[str, Any] = {f"k{n}": {"type": "integer"} for n in range(10)}
    fields.update(seo={"type": "json"}, tags={"type": "array"}, old={"type": "integer"})
    fields.update(only={"type": "boolean"})
    reply = stack.client.post(
        "/api/collections",
        json={"name": f"notes_{uuid.uuid4().hex[:8]}", "schema": {"properties": fields}},
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()["data"]
    return body


def test_idempotency_keys_belong_to_their_caller(stack: Stack, notes: dict[str, Any]) -> None:
    key = {"Idempotency-Key": f"shared-{uuid.uuid4().hex[:8]}"}
    a, b = stack.user("editor"), stack.user("editor")
    item = {"collection": notes["name"], "title": "Same request"}
    first = a.client.post("/api/content", json=item, headers=key)
    second = b.client.post("/api/content", json=item, headers=key)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["data"]["id"] != second.json()["data"]["id"]
    assert second.json()["data"]["author_id"] == b.id
    # The collection by name or by id is the same request: a replay, not a conflict.
    by_id = a.client.post(
        "/api/content", json={"collectionId": notes["id"], "title": "Same request"}, headers=key
    )
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["data"]["id"] == first.json()["data"]["id"]
    # A different request under the same key is still refused, for that caller.
    other = a.client.post("/api/content", json={**item, "title": "Another request"}, headers=key)
    assert other.status_code == 409
    listed = stack.client.get(
        "/api/content", params={"collection": notes["name"], "status": "draft", "meta": "total"}
    )
    assert listed.json()["meta"]["total"] == 2


def test_concurrent_patches_without_version_all_succeed(
    stack: Stack, notes: dict[str, Any]
) -> None:
    created = stack.client.post(
        "/api/content", json={"collection": notes["name"], "title": "Counter", "data": {}}
    )
    item_id = created.json()["data"]["id"]
    token = stack.client.headers["authorization"]

    def patch(n: int) -> int:
        import httpx

        with httpx.Client(base_url=stack.base_url, timeout=15) as client:
            reply = client.patch(
                f"/api/content/{item_id}",
                headers={"authorization": token},
                json={"data": {f"k{n}": n}},
            )
            assert reply.status_code != 400, reply.text
            return reply.status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(patch, range(10)))
    assert statuses == [200] * 10
    final = stack.client.get(f"/api/content/{item_id}", headers={"cache-control": "no-cache"})
    body = final.json()["data"]
    # Every merge landed on top of the others: nothing was lost.
    assert body["data"] == {f"k{n}": n for n in range(10)}
    assert body["version"] == 11
    # A stale version is still refused.
    stale = stack.client.patch(f"/api/content/{item_id}", json={"title": "x", "version": 3})
    assert stale.status_code == 409


def test_patch_is_a_json_merge_patch_and_put_replaces(stack: Stack, notes: dict[str, Any]) -> None:
    data = {"seo": {"title": "T", "description": "D"}, "tags": ["a", "b"], "old": 1}
    created = stack.client.post(
        "/api/content", json={"collection": notes["name"], "title": "Merge", "data": data}
    )
    item_id = created.json()["data"]["id"]
    patched = stack.client.patch(
        f"/api/content/{item_id}",
        json={"data": {"seo": {"description": None, "image": "x.png"}, "tags": ["c"], "old": None}},
    )
    assert patched.status_code == 200, patched.text
    expected = {"seo": {"title": "T", "image": "x.png"}, "tags": ["c"]}
    assert patched.json()["data"]["data"] == expected
    read = stack.client.get(f"/api/content/{item_id}", headers={"cache-control": "no-cache"})
    assert read.json()["data"]["data"] == expected
    replaced = stack.client.put(f"/api/content/{item_id}", json={"data": {"only": True}})
    assert replaced.json()["data"]["data"] == {"only": True}
