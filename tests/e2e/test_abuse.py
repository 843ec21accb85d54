"""Brute force and leaks: login rate limits (with bypass attempts), secrets never in logs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, Stack, start_stack


@pytest.fixture
def limited_stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    """A stack with the default login limits, counting in Redis."""
    running = start_stack(
        tmp_path,
        seed=False,
        extra_env={
            "HERON_REDIS_URL": redis_url,
            "HERON_AUTH_LOGIN_ATTEMPTS_PER_IP": "30",
            "HERON_LOG_LEVEL": "DEBUG",
        },
    )
    yield running
    running.stop()


def test_eleventh_failed_login_is_limited_across_path_and_body_variants(
    limited_stack: Stack,
) -> None:
    stack = limited_stack
    victim = stack.user("editor")
    # Absolute URLs: a client library would read "//auth" as a host name.
    paths = [
        f"{stack.base_url}{p}"
        for p in ("/auth/login", "/AUTH/LOGIN", "/auth/login/", "//auth//login", "/Auth/Login/")
    ]
    emails = [victim.email, victim.email.upper(), f"  {victim.email} ", victim.email.title()]
    for attempt in range(10):
        reply = stack.anon.post(
            paths[attempt % len(paths)],
            json={"email": emails[attempt % len(emails)], "password": f"wrong-{attempt}-pw"},
        )
        assert reply.status_code == 401, (attempt, reply.status_code, reply.text)
        assert int(reply.headers["ratelimit-remaining"]) == 9 - attempt
    for path in paths:
        blocked = stack.anon.post(path, json={"email": victim.email, "password": victim.password})
        assert blocked.status_code == 429, (path, blocked.text)
        assert int(blocked.headers["retry-after"]) >= 1
        assert blocked.headers["ratelimit-remaining"] == "0"
        assert blocked.json()["code"] == "rate_limited"
    # Extra fields do not make a new account key; they are refused outright.
    rotated = stack.anon.post(
        "/auth/login",
        json={"email": victim.email, "password": victim.password, "nonce": uuid.uuid4().hex},
    )
    assert rotated.status_code == 400
    # Another account is not locked by the attack on this one.
    assert (
        stack.anon.post(
            "/auth/login", json={"email": stack.admin_email, "password": ADMIN_PASSWORD}
        ).status_code
        == 200
    )


def test_per_address_limit_ignores_forged_forwarded_for(limited_stack: Stack) -> None:
    stack = limited_stack
    statuses = []
    for attempt in range(35):
        reply = stack.anon.post(
            "/auth/login",
            headers={"x-forwarded-for": f"203.0.113.{attempt}", "x-real-ip": f"10.0.0.{attempt}"},
            json={"email": f"user{attempt}@example.com", "password": "wrong-password-1"},
        )
        statuses.append(reply.status_code)
    # The 30 attempts allowed per address count this client, whatever header it forges.
    assert 429 in statuses
    assert statuses.index(429) <= 30


def test_canary_password_and_tokens_never_reach_logs_or_error_bodies(limited_stack: Stack) -> None:
    stack = limited_stack
    secrets: list[str] = [ADMIN_PASSWORD]
    bodies: list[str] = []
    session = stack.login(stack.admin_email, ADMIN_PASSWORD)
    secrets += [session["token"], session["refresh_token"]]
    headers = {"authorization": f"Bearer {session['token']}"}
    api = stack.anon.post("/api/tokens", headers=headers, json={"name": "canary"})
    api_token = api.json()["data"]["token"]
    secrets.append(api_token)
    refreshed = stack.anon.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    secrets += [refreshed.json()["token"], refreshed.json()["refresh_token"]]

    # Every way a secret could end up in a log line or an error message.
    attempts = [
        ("POST", "/auth/login", {"email": stack.admin_email, "password": ADMIN_PASSWORD + "x"}),
        ("POST", "/auth/login", {"email": ADMIN_PASSWORD, "password": ADMIN_PASSWORD}),
        ("POST", "/auth/login", {"email": stack.admin_email, "password": 1}),
        ("POST", "/auth/refresh", {"refresh_token": session["refresh_token"]}),  # reuse
        ("POST", f"/api/content?access_token={session['token']}", {}),
        ("GET", f"/api/content/{api_token}", None),
        ("POST", "/auth/password", {"current_password": ADMIN_PASSWORD, "new_password": "short"}),
        ("POST", "/api/users", {"email": "c@example.com", "password": ADMIN_PASSWORD, "x": 1}),
    ]
    for method, path, body in attempts:
        reply = stack.anon.request(method, path, headers=headers, json=body)
        bodies.append(reply.text)
    for token in (session["token"], api_token, "garbage." + ADMIN_PASSWORD + ".x"):
        reply = httpx.get(
            f"{stack.base_url}/api/content", headers={"authorization": f"Bearer {token}"}
        )
        bodies.append(reply.text)

    logs = stack.logs()
    assert "DEBUG" in logs or '"level":"DEBUG"' in logs or len(logs) > 1000
    for secret in secrets:
        assert secret not in logs, "a secret reached a log"
        for body in bodies:
            assert secret not in body, f"a secret came back in an error body: {body[:200]}"
    assert json.dumps(ADMIN_PASSWORD)[1:-1] not in logs
