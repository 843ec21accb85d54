"""The gateway when the content service dies, hangs or comes back."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Stack, start_stack


def _wait_for(stack: Stack, path: str, status: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if stack.client.get(path).status_code == status:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{path} did not answer {status} within {timeout}s")


def test_killed_service_gives_503_then_recovers(own_stack: Stack) -> None:
    c = own_stack.client
    created = c.post("/api/collections", json={"name": "kept"})
    assert created.status_code == 201

    own_stack.content.kill()
    started = time.monotonic()
    reply = c.get("/api/collections/kept")
    assert time.monotonic() - started < 2  # fails fast, does not hang until the deadline
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    error = reply.json()
    assert error["code"] == "unavailable"
    assert error["request_id"] == reply.headers["x-request-id"]
    assert "127.0.0.1" not in error["error"]  # no transport internals
    write = c.post("/api/content", json={"collectionId": "kept", "title": "t"})
    assert write.status_code == 503
    ready = c.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["content"] == "unreachable"
    assert c.get("/health").status_code == 200  # the gateway itself stays alive

    own_stack.content.start()
    _wait_for(own_stack, "/ready", 200, timeout=20)
    recovered_in = _wait_for(own_stack, "/api/collections/kept", 200, timeout=5)
    assert recovered_in < 3
    assert c.get("/api/collections/kept").json()["data"]["name"] == "kept"


def test_hung_service_gives_504_within_the_deadline(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, seed=False, extra_env={"HERON_GATEWAY_RPC_TIMEOUT_SECONDS": "2"})
    try:
        stack.content.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            reply = stack.client.get("/api/collections")
            elapsed = time.monotonic() - started
            assert reply.status_code == 504
            assert reply.json()["code"] == "deadline_exceeded"
            assert 2 <= elapsed < 2 + 0.5  # the stack's deadline is 2 s
        finally:
            stack.content.signal(signal.SIGCONT)
        _wait_for(stack, "/api/collections", 200, timeout=2)
    finally:
        stack.stop()


def test_sigterm_stops_the_service_cleanly(own_stack: Stack) -> None:
    own_stack.content.signal(signal.SIGTERM)
    assert own_stack.content.popen is not None
    assert own_stack.content.popen.wait(15) == 0
    log = own_stack.content.log()
    assert '"msg":"shutting down"' in log and '"msg":"stopped"' in log
    reply = httpx.get(f"{own_stack.base_url}/api/collections", timeout=5)
    assert reply.status_code == 503


def test_demo_is_not_seeded_again_into_an_emptied_store(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, seed=True)
    try:
        c = stack.client
        seeded = [col["name"] for col in c.get("/api/collections").json()["data"]]
        assert seeded == ["pages", "blog_posts", "news"]
        for name in seeded:
            for item in c.get(f"/api/collections/{name}/content").json()["data"]:
                assert c.delete(f"/api/content/{item['id']}").status_code == 200
            assert c.delete(f"/api/collections/{name}").status_code == 200
        stack.content.stop()
        stack.content.start()
        stack.wait_ready()
        assert c.get("/api/collections").json()["data"] == []
    finally:
        stack.stop()


def test_a_content_service_started_without_auth_is_not_ready_until_auth_is_up(
    own_stack: Stack,
) -> None:
    own_stack.auth.stop()
    own_stack.content.stop()
    own_stack.content.start()  # it cannot fetch the auth state: it cannot verify anyone yet
    deadline = time.monotonic() + 15
    while (content := own_stack.anon.get("/ready").json()["checks"]["content"]) == "unreachable":
        assert time.monotonic() < deadline, "the content service did not start"
        time.sleep(0.1)
    assert content == "not_serving"
    time.sleep(1)  # and it stays so
    ready = own_stack.anon.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["content"] == "not_serving"
    own_stack.auth.start()
    own_stack.wait_ready()
    # Ready means ready: a signed-in write works at once.
    created = own_stack.client.post("/api/collections", json={"name": "after_auth"})
    assert created.status_code == 201, created.text
