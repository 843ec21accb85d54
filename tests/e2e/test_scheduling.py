"""Scheduled publishing through the gateway: schedules are checked, shown to editors only,
cancellable, applied within 2 s of their time, exactly once even with two content processes
on one PostgreSQL (counted on the revision log), and a change that cannot be made says why on
the item."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, throwaway_database
from tests.e2e.conftest import Service, Stack, start_stack
from tests.e2e.test_content_api import assert_error, unique


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (roles change here), on SQLite."""
    running = start_stack(tmp_path_factory.mktemp("scheduling"), seed=False)
    yield running
    running.stop()


def _item(stack: Stack, client: httpx.Client | None = None) -> dict[str, Any]:
    name = unique("timed")
    schema = {"properties": {"body": {"type": "text"}}}
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    reply = (client or stack.client).post(
        "/api/content", json={"collection": name, "title": "Later", "data": {"body": "b"}}
    )
    assert reply.status_code == 201, reply.text
    item: dict[str, Any] = reply.json()["data"]
    return item


def _now_ms() -> int:
    return int(time.time() * 1000)


def _wait_for(stack: Stack, url: str, status: str, seconds: float = 6) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        item: dict[str, Any] = stack.client.get(url).json()["data"]
        if item["status"] == status or time.monotonic() > deadline:
            return item
        time.sleep(0.1)


def test_a_scheduled_publish_and_unpublish_happen_on_time(scheduled: Stack) -> None:
    stack = scheduled
    item = _item(stack)
    url = f"/api/content/{item['id']}"
    publish_at = _now_ms() + 1500
    unpublish_at = publish_at + 1500
    reply = stack.client.post(
        f"{url}/schedule", json={"publish_at": publish_at, "unpublish_at": unpublish_at}
    )
    assert reply.status_code == 200, reply.text
    shown = reply.json()["data"]
    assert (shown["scheduled_publish_at"], shown["scheduled_unpublish_at"]) == (
        publish_at,
        unpublish_at,
    )
    assert shown["status"] == "draft" and shown["version"] == 2  # a change of its own
    published = _wait_for(stack, url, "published")
    assert published["status"] == "published" and published["scheduled_publish_at"] is None
    anon = stack.anon.get(url).json()["data"]  # public now, its remaining schedule not
    assert anon["status"] == "published" and anon["scheduled_unpublish_at"] is None
    back = _wait_for(stack, url, "draft")
    assert back["status"] == "draft" and back["scheduled_unpublish_at"] is None
    assert stack.anon.get(url).status_code == 404
    history = stack.client.get(f"{url}/revisions").json()["data"]
    assert [r["status"] for r in history][:3] == ["draft", "published", "draft"]
    by_status = {r["status"]: r for r in history[:2]}
    assert by_status["published"]["author_id"] == item["author_id"]  # who scheduled it
    assert 0 <= by_status["published"]["created_at"] - publish_at < 2000
    assert 0 <= by_status["draft"]["created_at"] - unpublish_at < 2000


def test_schedules_are_checked_and_cancellable(scheduled: Stack) -> None:
    stack = scheduled
    url = f"/api/content/{_item(stack)['id']}"
    past = stack.client.post(f"{url}/schedule", json={"publish_at": _now_ms() - 1000})
    assert assert_error(past, 400, "invalid_argument")["details"][0]["field"] == "publish_at"
    later = _now_ms() + 60_000
    backwards = stack.client.post(
        f"{url}/schedule", json={"publish_at": later, "unpublish_at": later - 1}
    )
    assert_error(backwards, 400, "invalid_argument")
    assert_error(stack.client.post(f"{url}/schedule", json={}), 400, "invalid_argument")
    bad = stack.client.post(f"{url}/schedule", json={"publish_at": "next tuesday"})
    assert assert_error(bad, 400, "invalid_argument")["details"][0]["field"].startswith(
        "publish_at"
    )
    iso = stack.client.post(f"{url}/schedule", json={"publish_at": "2999-01-31T09:00:00+01:00"})
    assert iso.json()["data"]["scheduled_publish_at"] == 32474764800000  # 08:00 UTC
    author = stack.user("author")
    own = _item(stack, author.client)
    refused = author.client.post(f"/api/content/{own['id']}/schedule", json={"publish_at": later})
    assert_error(refused, 403, "permission_denied")
    soon = stack.client.post(f"{url}/schedule", json={"publish_at": _now_ms() + 800})
    assert soon.status_code == 200
    cancelled = stack.client.delete(f"{url}/schedule")
    assert cancelled.json()["data"]["scheduled_publish_at"] is None
    time.sleep(1.5)
    assert stack.client.get(url).json()["data"]["status"] == "draft"  # never published


def test_a_change_that_cannot_be_made_says_why_on_the_item(scheduled: Stack) -> None:
    stack = scheduled
    editor = stack.user("editor")
    item = _item(stack, editor.client)
    url = f"/api/content/{item['id']}"
    roles = {r["name"]: r for r in stack.client.get("/api/roles").json()["data"]}
    allowed = roles["editor"]["permissions"]
    reply = editor.client.post(f"{url}/schedule", json={"publish_at": _now_ms() + 1500})
    assert reply.status_code == 200, reply.text
    # Before it is due, the editors lose the right to publish.
    narrowed = [p for p in allowed if p != "content.publish"]
    assert stack.client.put("/api/roles/editor", json={"permissions": narrowed}).is_success
    try:
        deadline = time.monotonic() + 6
        while True:
            now = stack.client.get(url).json()["data"]
            if now["schedule_error"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert now["status"] == "draft"
        assert "may no longer publish" in now["schedule_error"]
        assert now["scheduled_publish_at"] is not None  # kept, to see and to redo
        assert stack.anon.get(url).status_code == 404
    finally:
        assert stack.client.put("/api/roles/editor", json={"permissions": allowed}).is_success


def test_two_content_processes_publish_once(tmp_path: Path, postgres_server_url: str) -> None:
    with (
        throwaway_database(postgres_server_url) as content_url,
        throwaway_database(postgres_server_url) as auth_url,
    ):
        # Both schedulers tick every 20 ms and take two items at a time: their transactions
        # overlap all along, so a claim that did not lock would publish items twice.
        busy = {
            "HERON_CONTENT_SCHEDULER_INTERVAL_SECONDS": "0.02",
            "HERON_CONTENT_SCHEDULER_BATCH": "2",
        }
        stack = start_stack(
            tmp_path, content_url, auth_database_url=auth_url, seed=False, extra_env=busy
        )
        try:
            first = stack.backends["content"]
            port = free_port()
            second = Service(
                "content-2",
                [sys.executable, "-m", "heron_content"],
                {**first.env, "HERON_CONTENT_GRPC_PORT": str(port)},
                tmp_path / "content-2.log",
            )
            second.start()
            try:
                _publish_many_once(stack, tmp_path)
            finally:
                second.stop()
        finally:
            stack.stop()


def _publish_many_once(stack: Stack, tmp_path: Path) -> None:
    """Twenty items due at the same instant: each published exactly once, on time, and the
    two schedulers shared the work (both logs say they applied some)."""
    items = [_item(stack) for _ in range(20)]
    publish_at = _now_ms() + 2500
    for item in items:
        reply = stack.client.post(
            f"/api/content/{item['id']}/schedule", json={"publish_at": publish_at}
        )
        assert reply.status_code == 200, reply.text
    time.sleep(4.5)
    for item in items:
        history = stack.client.get(f"/api/content/{item['id']}/revisions").json()["data"]
        published = [r for r in history if r["status"] == "published"]
        assert len(published) == 1, history  # exactly once
        assert 0 <= published[0]["created_at"] - publish_at < 2000
    logs = [
        (tmp_path / "content.log").read_text(),
        (tmp_path / "content-2.log").read_text(),
    ]
    applied = [log.count("scheduled change applied") for log in logs]
    assert sum(applied) == 20, applied
