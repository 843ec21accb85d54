"""ETags and conditional writes through the gateway: every item answer names the item's version
in its `ETag`; `If-Match` with a stale tag is a 412, `"version": N` a 409, and neither changes
anything."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import assert_error
from tests.e2e.test_field_types import _collection, _create


def _item(stack: Stack) -> tuple[str, dict[str, Any], str]:
    name = _collection(stack, {"properties": {"body": {"type": "text"}}})
    created = _create(stack, name, {"body": "one"})
    assert created.status_code == 201, created.text
    item = created.json()["data"]
    return f"/api/content/{item['id']}", item, created.headers["etag"]


def test_item_answers_carry_the_version_tag(stack: Stack) -> None:
    url, item, created_tag = _item(stack)
    assert created_tag == f'"{item["id"]}.1"'
    first = stack.client.get(url)
    assert first.headers["etag"] == created_tag
    again = stack.client.get(url)  # from the page cache: the same tag
    assert again.headers["x-cache-status"] == "HIT" and again.headers["etag"] == created_tag
    unchanged = stack.client.get(url, headers={"if-none-match": created_tag})
    assert unchanged.status_code == 304
    patched = stack.client.patch(url, json={"data": {"body": "two"}})
    assert patched.headers["etag"] == f'"{item["id"]}.2"'
    assert stack.client.get(url, headers={"if-none-match": created_tag}).status_code == 200


def test_if_match_guards_every_write(stack: Stack) -> None:
    url, item, tag = _item(stack)
    fresh = stack.client.patch(url, json={"data": {"body": "two"}}, headers={"if-match": tag})
    assert fresh.status_code == 200, fresh.text
    stale = stack.client.patch(url, json={"data": {"body": "lost"}}, headers={"if-match": tag})
    body = assert_error(stale, 412, "precondition_failed")
    assert "version 2" in body["error"]
    for write in (
        lambda h: stack.client.put(url, json={"title": "New"}, headers=h),
        lambda h: stack.client.post(f"{url}/publish", headers=h),
        lambda h: stack.client.post(f"{url}/archive", headers=h),
        lambda h: stack.client.post(f"{url}/revisions/1/restore", headers=h),
        lambda h: stack.client.delete(url, headers=h),
    ):
        assert_error(write({"if-match": tag}), 412, "precondition_failed")
        assert_error(write({"if-match": f'W/"{item["id"]}.2"'}), 412, "precondition_failed")
        assert_error(write({"if-match": '"someone-else.2"'}), 412, "precondition_failed")
    now = stack.client.get(url).json()["data"]
    assert now["data"] == {"body": "two"} and now["version"] == 2 and now["status"] == "draft"
    current = stack.client.get(url).headers["etag"]
    star = stack.client.post(f"{url}/publish", headers={"if-match": "*"})
    assert star.status_code == 200 and star.headers["etag"] != current
    mixed = stack.client.patch(
        url, json={"title": "X", "version": 1}, headers={"if-match": star.headers["etag"]}
    )
    assert_error(mixed, 400, "invalid_argument")
    gone = stack.client.delete(url, headers={"if-match": star.headers["etag"]})
    assert gone.status_code == 200
    assert_error(stack.client.get(url), 404, "not_found")


def test_a_stale_version_in_the_body_is_a_conflict(stack: Stack) -> None:
    url, _, _ = _item(stack)
    assert stack.client.patch(url, json={"title": "Second"}).status_code == 200
    assert_error(stack.client.put(url, json={"title": "X", "version": 1}), 409, "conflict")
    assert_error(stack.client.request("DELETE", url, json={"version": 1}), 409, "conflict")
    assert stack.client.get(url).json()["data"]["title"] == "Second"
    assert stack.client.request("DELETE", url, json={"version": 2}).status_code == 200
