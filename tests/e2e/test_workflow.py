"""The editorial workflow through the gateway: draft → review → published → archived, with
publishing, unpublishing and archiving as editors' decisions."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import assert_error, unique


def test_an_author_asks_for_review_and_an_editor_publishes(stack: Stack) -> None:
    name = unique("flow")
    assert stack.client.post("/api/collections", json={"name": name}).is_success
    author, editor = stack.user("author"), stack.user("editor")
    created = author.client.post("/api/content", json={"collection": name, "title": "Mine"})
    assert created.status_code == 201, created.text
    url = f"/api/content/{created.json()['data']['id']}"
    in_review = author.client.patch(url, json={"status": "review"})
    assert in_review.status_code == 200 and in_review.json()["data"]["status"] == "review"
    assert_error(author.client.post(f"{url}/publish"), 403, "permission_denied")
    assert_error(author.client.post(f"{url}/archive"), 403, "permission_denied")
    assert_error(stack.anon.get(url), 404, "not_found")  # in review: not public yet
    published = editor.client.post(f"{url}/publish")
    assert published.status_code == 200, published.text
    first = published.json()["data"]
    assert first["status"] == "published" and first["published_at"] is not None
    assert stack.anon.get(url).json()["data"]["status"] == "published"
    back = editor.client.post(f"{url}/unpublish")
    assert back.json()["data"]["status"] == "draft"
    assert_error(stack.anon.get(url), 404, "not_found")
    again = editor.client.post(f"{url}/publish", json={"version": back.json()["data"]["version"]})
    assert again.json()["data"]["published_at"] == first["published_at"]  # set once
    assert_error(editor.client.post(f"{url}/archive", json={"version": 1}), 409, "conflict")
    archived = editor.client.post(f"{url}/archive")
    assert archived.json()["data"]["status"] == "archived"
    assert_error(stack.anon.get(url), 404, "not_found")
    actions = [r["status"] for r in stack.client.get(f"{url}/revisions").json()["data"]]
    assert actions == ["archived", "published", "draft", "published", "review", "draft"]
    listed = stack.anon.get(f"/api/collections/{name}/content?meta=total").json()
    assert listed["data"] == [] and listed["meta"]["total"] == 0


def test_only_editors_create_items_archived(stack: Stack) -> None:
    name = unique("flow")
    assert stack.client.post("/api/collections", json={"name": name}).is_success
    author = stack.user("author")
    refused = author.client.post(
        "/api/content", json={"collection": name, "title": "x", "status": "archived"}
    )
    assert_error(refused, 403, "permission_denied")
    review = author.client.post(
        "/api/content", json={"collection": name, "title": "y", "status": "review"}
    )
    assert review.status_code == 201 and review.json()["data"]["status"] == "review"
