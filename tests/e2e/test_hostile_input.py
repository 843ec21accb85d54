"""Hostile and edge-case input through the gateway: clear 4xx errors, nothing stored."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import SCHEMA, assert_error, unique


@pytest.fixture
def collection(stack: Stack) -> str:
    name = unique("hostile")
    assert stack.client.post("/api/collections", json={"name": name, "schema": SCHEMA}).is_success
    return name


def total(stack: Stack, collection: str) -> int:
    return int(
        stack.client.get(f"/api/collections/{collection}/content?meta=total").json()["meta"][
            "total"
        ]
    )


def post_raw(stack: Stack, path: str, body: str) -> httpx.Response:
    return stack.client.post(path, content=body, headers={"content-type": "application/json"})


def test_values_a_store_cannot_hold_are_rejected(stack: Stack, collection: str) -> None:
    c = f'"collectionId": "{collection}"'
    cases = {
        "NaN": f'{{{c}, "title": "t", "data": {{"body": "b", "rating": NaN}}}}',
        "Infinity": f'{{{c}, "title": "t", "data": {{"body": "b", "tags": [Infinity]}}}}',
        "1e400": f'{{{c}, "title": "t", "data": {{"body": "b", "tags": [1e400]}}}}',
        "2**64": f'{{{c}, "title": "t", "data": {{"body": "b", "rating": 18446744073709551616}}}}',
        "NUL in data": f'{{{c}, "title": "t", "data": {{"body": "a\\u0000b"}}}}',
        "NUL in title": f'{{{c}, "title": "a\\u0000b", "data": {{"body": "b"}}}}',
        "deep": f'{{{c}, "title": "t", "data": {{"body": "b", "tags": '
        + "[" * 40
        + "]" * 40
        + "}}",
    }
    for name, body in cases.items():
        reply = post_raw(stack, "/api/content", body)
        assert_error(reply, 400, "invalid_argument")
        assert reply.json()["details"], name
    assert total(stack, collection) == 0


def test_out_of_range_numbers_are_400(stack: Stack, collection: str) -> None:
    assert_error(
        stack.client.get("/api/content", params={"offset": 3_000_000_000}), 400, "invalid_argument"
    )
    item = stack.client.post(
        "/api/content", json={"collectionId": collection, "title": "t", "data": {"body": "b"}}
    ).json()["data"]
    for version in (2**63, -1, "1", True):
        reply = stack.client.patch(f"/api/content/{item['id']}", json={"version": version})
        assert_error(reply, 400, "invalid_argument")
    assert stack.client.get(f"/api/content/{item['id']}").json()["data"] == item


def test_schema_bounds(stack: Stack) -> None:
    name = unique("bounds")
    schema = {"properties": {"t": {"type": "string", "maxLength": None, "minLength": 2}}}
    created = stack.client.post("/api/collections", json={"name": name, "schema": schema})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["schema"]["properties"]["t"] == {"type": "string", "minLength": 2}
    ok = stack.client.post(
        "/api/content", json={"collectionId": name, "title": "x", "data": {"t": "long enough"}}
    )
    assert ok.status_code == 201
    for bound in ('"x"', "1e999", "true"):
        field = f'{{"type": "string", "maxLength": {bound}}}'
        body = f'{{"name": "{unique("b")}", "schema": {{"properties": {{"t": {field}}}}}}}'
        assert_error(post_raw(stack, "/api/collections", body), 400, "invalid_argument")


def test_names_with_a_trailing_newline_are_refused(stack: Stack) -> None:
    assert_error(
        stack.client.post("/api/collections", json={"name": "evil\n"}), 400, "invalid_argument"
    )
    schema = {"properties": {"body\n": {"type": "text"}}}
    assert_error(
        stack.client.post("/api/collections", json={"name": unique("n"), "schema": schema}),
        400,
        "invalid_argument",
    )
    assert "evil\n" not in [c["name"] for c in stack.client.get("/api/collections").json()["data"]]


def test_odd_ids_are_plain_404s(stack: Stack) -> None:
    for key in ("a" * 20000, "a%00b", "%27%20OR%201%3D1%20--", "%E2%80%AE"):
        for path in (f"/api/content/{key}", f"/api/collections/{key}"):
            error = assert_error(stack.client.get(path), 404, "not_found")
            assert len(error["error"]) < 200


def test_many_problems_give_a_bounded_400(stack: Stack, collection: str) -> None:
    data = {"body": "b", **{f"unknown_{n}": n for n in range(400)}}
    reply = stack.client.post(
        "/api/content", json={"collectionId": collection, "title": "t", "data": data}
    )
    error = assert_error(reply, 400, "invalid_argument")
    assert 0 < len(error["details"]) <= 20


def test_idempotency_key_reused_for_another_request_is_409(stack: Stack, collection: str) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = stack.client.post(
        "/api/content",
        json={"collectionId": collection, "title": "Secret draft", "data": {"body": "private"}},
        headers=key,
    )
    assert first.status_code == 201
    other = stack.client.post(
        "/api/content",
        json={"collectionId": collection, "title": "Mine", "data": {"body": "x"}},
        headers=key,
    )
    error = assert_error(other, 409, "conflict")
    assert "private" not in other.text and "Secret" not in other.text
    assert error["details"][0]["field"] == "Idempotency-Key"
    assert total(stack, collection) == 1


def test_empty_patch_changes_nothing(stack: Stack, collection: str) -> None:
    item = stack.client.post(
        "/api/content", json={"collectionId": collection, "title": "t", "data": {"body": "b"}}
    ).json()["data"]
    for body in ({}, {"title": "t"}, {"data": {"body": "b"}}):
        same = stack.client.patch(f"/api/content/{item['id']}", json=body)
        assert same.json()["data"] == item, body


def test_concurrent_creates_with_one_title_all_succeed(stack: Stack, collection: str) -> None:
    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=stack.base_url, timeout=15, headers=stack.client.headers
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/content",
                        json={"collectionId": collection, "title": "Same", "data": {"body": "b"}},
                    )
                    for _ in range(10)
                )
            )

    replies = asyncio.run(create_all())
    assert [r.status_code for r in replies] == [201] * 10, [r.text for r in replies]
    slugs = {r.json()["data"]["slug"] for r in replies}
    assert len(slugs) == 10
    assert "same" in slugs
