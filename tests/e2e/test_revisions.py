"""An item's history through the gateway: every change is a revision; list, read, restore."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack, start_stack
from tests.e2e.test_content_api import assert_error, unique


def _collection(stack: Stack) -> str:
    name = unique("history")
    schema = {"properties": {"body": {"type": "text"}, "n": {"type": "integer"}}}
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    return name


def test_every_change_is_a_revision_and_a_restore_is_one_more(stack: Stack) -> None:
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "First", "data": {"body": "one"}}
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    assert stack.client.patch(url, json={"title": "Second", "data": {"body": "two"}}).is_success
    assert stack.client.patch(url, json={"status": "published"}).is_success
    listed = stack.client.get(f"{url}/revisions").json()
    assert [r["version"] for r in listed["data"]] == [3, 2, 1]
    assert [r["action"] for r in listed["data"]] == ["updated", "updated", "created"]
    assert listed["meta"]["total"] == 3
    first = stack.client.get(f"{url}/revisions/1").json()["data"]
    assert (first["title"], first["data"], first["status"]) == ("First", {"body": "one"}, "draft")
    assert first["author_id"] == item["author_id"]
    restored = stack.client.post(f"{url}/revisions/1/restore")
    assert restored.status_code == 200, restored.text
    now = restored.json()["data"]
    assert (now["title"], now["data"], now["version"]) == ("First", {"body": "one"}, 4)
    assert now["status"] == "published"  # a restore does not change the status
    newest = stack.client.get(f"{url}/revisions?limit=1").json()
    assert newest["data"][0]["action"] == "restored" and newest["meta"]["total"] == 4
    assert stack.anon.get(url).json()["data"]["title"] == "First"
    stale = stack.client.post(f"{url}/revisions/2/restore", json={"version": 3})
    assert_error(stale, 409, "conflict")
    assert_error(stack.client.get(f"{url}/revisions/99"), 404, "not_found")


def test_a_restore_is_checked_against_todays_schema(stack: Stack) -> None:
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "T", "data": {"n": 5}}
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    assert stack.client.patch(url, json={"data": {"n": 1}}).is_success
    stricter = {"properties": {"body": {"type": "text"}, "n": {"type": "integer", "maximum": 3}}}
    assert stack.client.patch(f"/api/collections/{name}", json={"schema": stricter}).is_success
    refused = stack.client.post(f"{url}/revisions/1/restore")
    assert assert_error(refused, 400, "invalid_argument")["details"][0]["field"] == "data.n"
    assert stack.client.get(url).json()["data"]["data"] == {"n": 1}


def test_draft_revisions_are_as_private_as_drafts(stack: Stack) -> None:
    name = _collection(stack)
    item = stack.client.post(
        "/api/content",
        json={"collection": name, "title": "Secret draft title", "data": {"body": "draft"}},
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    assert_error(stack.anon.get(f"{url}/revisions"), 404, "not_found")
    assert stack.client.patch(
        url, json={"title": "Public", "status": "published", "data": {"body": "live"}}
    ).is_success
    public = stack.anon.get(f"{url}/revisions").json()
    assert [r["version"] for r in public["data"]] == [2] and public["meta"]["total"] == 1
    assert "Secret" not in str(public)
    assert_error(stack.anon.get(f"{url}/revisions/1"), 404, "not_found")
    viewer = stack.user("viewer")
    assert viewer.client.get(f"{url}/revisions").json()["meta"]["total"] == 2
    assert_error(stack.anon.post(f"{url}/revisions/2/restore"), 401, "unauthenticated")
    assert_error(viewer.client.post(f"{url}/revisions/1/restore"), 403, "permission_denied")
    assert_error(stack.client.get(f"/api/content/{uuid.uuid4()}/revisions"), 404, "not_found")


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("revisions"),
        seed=False,
        extra_env={"HERON_CONTENT_REVISIONS_PER_ITEM": "3"},
    )
    yield running
    running.stop()


def test_only_the_newest_revisions_are_kept(capped: Stack) -> None:
    stack = capped
    name = _collection(stack)
    item = stack.client.post(
        "/api/content", json={"collection": name, "title": "T", "data": {"n": 0}}
    ).json()["data"]
    url = f"/api/content/{item['id']}"
    for n in range(1, 6):
        assert stack.client.patch(url, json={"data": {"n": n}}).is_success
    listed = stack.client.get(f"{url}/revisions").json()
    assert [r["version"] for r in listed["data"]] == [6, 5, 4]
    assert_error(stack.client.get(f"{url}/revisions/1"), 404, "not_found")
