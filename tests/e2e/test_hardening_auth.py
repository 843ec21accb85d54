"""Hardening of sign-in, roles, ownership and CSRF: each test is an attack that once worked."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cms.auth.v1 import auth_pb2 as pb
from cms.auth.v1 import auth_pb2_grpc

from tests.e2e.conftest import ADMIN_PASSWORD, Stack, start_stack


def test_the_public_role_can_only_read(stack: Stack) -> None:
    before = next(r for r in stack.client.get("/api/roles").json()["data"] if r["name"] == "public")
    victim = stack.user("viewer")
    for permission in ("users.update", "users.create", "settings.update", "cache.manage"):
        reply = stack.client.put(
            "/api/roles/public", json={"permissions": ["content.read", permission]}
        )
        assert reply.status_code == 400, reply.text
        assert permission in reply.json()["error"]
    # `:own` needs an identity, which anonymous callers lack.
    assert (
        stack.client.put(
            "/api/roles/public", json={"permissions": ["content.update:own"]}
        ).status_code
        == 400
    )
    after = next(r for r in stack.client.get("/api/roles").json()["data"] if r["name"] == "public")
    assert after["permissions"] == before["permissions"]
    # Anonymous callers still cannot touch accounts, keys or caches.
    assert (
        stack.anon.patch(
            f"/api/users/{victim.id}", json={"password": "taken-over-Pw-1234"}
        ).status_code
        == 401
    )
    assert stack.anon.post("/api/auth/keys/rotate").status_code == 401
    assert stack.anon.delete("/api/cache/gateway").status_code == 401
    assert stack.login(victim.email, victim.password)["user"]["id"] == victim.id
    # Reading stays configurable.
    narrowed = stack.client.put("/api/roles/public", json={"permissions": ["collections.read"]})
    assert narrowed.status_code == 200, narrowed.text
    restored = stack.client.put("/api/roles/public", json={"permissions": before["permissions"]})
    assert restored.status_code == 200
    # Role changes reach every process within about a second: the next test reads as before.
    deadline = time.monotonic() + 10
    while stack.anon.get("/api/content", params={"limit": 1}).status_code != 200:
        assert time.monotonic() < deadline, "anonymous reading never came back"
        time.sleep(0.1)


def test_authors_cannot_change_or_delete_what_is_published(stack: Stack) -> None:
    author = stack.user("author")
    created = author.client.post(
        "/api/content",
        json={"collection": "blog_posts", "title": "Mine", "data": {"content": "v1"}},
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["data"]["id"]
    # Their own draft is theirs to change.
    assert (
        author.client.patch(f"/api/content/{item_id}", json={"data": {"content": "v2"}}).status_code
        == 200
    )
    assert (
        stack.client.patch(f"/api/content/{item_id}", json={"status": "published"}).status_code
        == 200
    )

    deface = author.client.patch(f"/api/content/{item_id}", json={"title": "Defaced"})
    assert deface.status_code == 403
    assert "content.publish" in deface.json()["error"]
    replace = author.client.put(f"/api/content/{item_id}", json={"data": {"content": "gone"}})
    assert replace.status_code == 403
    assert author.client.delete(f"/api/content/{item_id}").status_code == 403
    public = stack.anon.get(f"/api/content/{item_id}")
    assert public.status_code == 200
    assert public.json()["data"]["title"] == "Mine"
    assert public.json()["data"]["data"] == {"content": "v2"}
    # An editor may still change it.
    editor = stack.user("editor")
    assert (
        editor.client.patch(f"/api/content/{item_id}", json={"title": "Edited"}).status_code == 200
    )


def test_password_change_is_rate_limited(stack: Stack) -> None:
    user = stack.user("viewer")
    for attempt in range(10):
        reply = user.client.post(
            "/auth/password",
            json={"current_password": f"guess-{attempt}-pw", "new_password": "new-Pw-long-1234"},
        )
        assert reply.status_code == 400, (attempt, reply.text)
        assert int(reply.headers["ratelimit-remaining"]) == 9 - attempt
    blocked = user.client.post(
        "/auth/password",
        json={"current_password": user.password, "new_password": "new-Pw-long-1234"},
    )
    assert blocked.status_code == 429, blocked.text
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.json()["code"] == "rate_limited"
    # The password did not change.
    assert stack.login(user.email, user.password)["user"]["id"] == user.id


def _auth_target(stack: Stack) -> str:
    return f"127.0.0.1:{stack.auth.env['HERON_AUTH_GRPC_PORT']}"


def test_sign_in_limits_hold_at_the_auth_services_own_port(stack: Stack) -> None:
    user = stack.user("viewer")

    async def run() -> None:
        async with grpc.aio.insecure_channel(_auth_target(stack)) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            for attempt in range(10):
                # Claiming another client address without the installation's secret changes
                # nothing: the caller is counted under its own address.
                forged = (("x-heron-client-address", f"198.51.100.{attempt}"),)
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await stub.Login(
                        pb.LoginRequest(email=user.email, password=f"wrong-{attempt}-pw"),
                        timeout=5,
                        metadata=forged,
                    )
                assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as blocked:
                await stub.Login(
                    pb.LoginRequest(email=user.email, password=user.password), timeout=5
                )
            assert blocked.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    asyncio.run(run())
    # The gateway's callers come from the same address here, so they are limited too.
    assert (
        stack.anon.post(
            "/auth/login", json={"email": user.email, "password": user.password}
        ).status_code
        == 429
    )


def _browser_session(stack: Stack, email: str, password: str) -> dict[str, str]:
    reply = stack.anon.post("/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200
    cookies = reply.headers.get_list("set-cookie")
    return {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in cookies}


def _cookie(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def test_the_csrf_token_is_bound_to_the_session(stack: Stack) -> None:
    user = stack.user("editor")
    jar = _browser_session(stack, user.email, user.password)
    other = _browser_session(stack, user.email, user.password)
    item = {"collection": "blog_posts", "title": "csrf probe", "data": {"content": "b"}}
    # A planted cookie with a matching header, and another session's real token: refused.
    planted = {**jar, "csrf_token": "attacker"}
    for cookies, token in ((planted, "attacker"), (jar, other["csrf_token"])):
        reply = stack.anon.post(
            "/api/content", headers={"cookie": _cookie(cookies), "x-csrf-token": token}, json=item
        )
        assert reply.status_code == 403, reply.text
        refresh = stack.anon.post(
            "/auth/refresh", headers={"cookie": _cookie(cookies), "x-csrf-token": token}
        )
        assert refresh.status_code == 403, refresh.text
    listed = stack.client.get(
        "/api/content", params={"collection": "blog_posts", "limit": 1000, "status": "draft"}
    )
    assert "csrf probe" not in {i["title"] for i in listed.json()["data"]}
    ok = stack.anon.post(
        "/api/content",
        headers={"cookie": _cookie(jar), "x-csrf-token": jar["csrf_token"]},
        json=item,
    )
    assert ok.status_code == 201, ok.text
    # Refreshing by cookie keeps the session's token valid.
    refreshed = stack.anon.post(
        "/auth/refresh", headers={"cookie": _cookie(jar), "x-csrf-token": jar["csrf_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    new = {
        c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0]
        for c in refreshed.headers.get_list("set-cookie")
    }
    assert "csrf_token" not in new
    jar.update(new)
    again = stack.anon.post(
        "/api/content",
        headers={"cookie": _cookie(jar), "x-csrf-token": jar["csrf_token"]},
        json={**item, "title": "csrf probe 2"},
    )
    assert again.status_code == 201, again.text


@pytest.fixture
def proxied_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack behind a trusted proxy (the test client), so each request names its address."""
    running = start_stack(
        tmp_path,
        seed=False,
        extra_env={
            "HERON_GATEWAY_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "HERON_AUTH_LOGIN_ATTEMPTS_PER_IP": "100",
            "HERON_AUTH_LOGIN_FAILURES_PER_ACCOUNT": "25",
        },
    )
    yield running
    running.stop()


def _login_from(stack: Stack, address: str, email: str, password: str) -> httpx.Response:
    return stack.anon.post(
        "/auth/login",
        headers={"x-forwarded-for": address},
        json={"email": email, "password": password},
    )


def test_a_lockout_attack_does_not_lock_the_owner_out(proxied_stack: Stack) -> None:
    stack = proxied_stack
    owner = stack.user("editor")
    home = "198.51.100.7"
    assert _login_from(stack, home, owner.email, owner.password).status_code == 200
    # One attacker address: locked after 10 failures, even with the right password.
    for attempt in range(10):
        reply = _login_from(stack, "203.0.113.5", owner.email, f"wrong-{attempt}-pw")
        assert reply.status_code == 401, reply.text
    assert _login_from(stack, "203.0.113.5", owner.email, owner.password).status_code == 429
    # The owner, elsewhere, is not locked out; nor is the admin.
    assert _login_from(stack, "192.0.2.44", owner.email, owner.password).status_code == 200
    assert _login_from(stack, "203.0.113.5", stack.admin_email, ADMIN_PASSWORD).status_code == 200
    # A distributed attack (many addresses) goes over the account's own limit: then only an
    # address the account signed in from before gets through, with the right password.
    for attempt in range(15):  # 10 + 15 reaches the account's limit of 25
        address = f"203.0.113.{100 + attempt}"
        assert _login_from(stack, address, owner.email, "wrong-password-1").status_code == 401
    fresh = _login_from(stack, "192.0.2.200", owner.email, owner.password)
    assert fresh.status_code == 429, fresh.text
    assert int(fresh.headers["retry-after"]) >= 1
    assert _login_from(stack, "192.0.2.201", owner.email, "wrong-password-1").status_code == 429
    assert _login_from(stack, home, owner.email, owner.password).status_code == 200
    # A known address with a wrong password is still a failure, not a way in.
    assert _login_from(stack, home, owner.email, "wrong-password-1").status_code == 401
    assert uuid.UUID(owner.id)
