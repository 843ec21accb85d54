"""Authentication through the gateway: tokens, sessions, revocation, API tokens, cookies."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.e2e.auth_helpers import auth_rows, b64, bearer, parts, seconds_until, status_with
from tests.e2e.conftest import ADMIN_PASSWORD, USER_PASSWORD, Stack

# Revocations reach every verifier by polling the auth service each second.
REVOCATION_BOUND_SECONDS = 3.0


def _admin_token(stack: Stack) -> str:
    return str(stack.client.headers["authorization"]).split(" ", 1)[1]


def _forgeries(stack: Stack) -> dict[str, str]:
    """A few forgeries, to show the gateway answers the verifier's refusal as a 401 (every
    kind of forgery is refused in tests/unit/auth/test_token_verification.py)."""
    token = _admin_token(stack)
    header, claims, signature = parts(token)
    escalated = {**claims, "role": "admin", "sub": str(uuid.uuid4())}
    return {
        "alg none": f"{b64(json.dumps({**header, 'alg': 'none'}).encode())}."
        f"{b64(json.dumps(claims).encode())}.",
        "tampered payload": f"{token.split('.')[0]}.{b64(json.dumps(escalated).encode())}."
        f"{signature}",
        "tampered signature": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "garbage": "not.a.token",
    }


def test_jwt_negative_suite(stack: Stack) -> None:
    """Forged tokens are refused with 401, on reads and writes alike."""
    assert status_with(stack, _admin_token(stack)) == 200
    for name, forged in _forgeries(stack).items():
        for method, path in (
            ("GET", "/auth/me"),
            ("GET", "/api/content"),
            ("POST", "/api/content"),
        ):
            reply = httpx.request(
                method,
                f"{stack.base_url}{path}",
                headers=bearer(forged),
                json={"collection": "blog_posts", "title": "forged"},
            )
            assert reply.status_code == 401, (name, path, reply.text)
            assert reply.json()["code"] == "unauthenticated"
            assert reply.headers["www-authenticate"].startswith("Bearer")


def test_login_answers_sonicjs_shape_and_wrong_passwords_fail_alike(stack: Stack) -> None:
    body = stack.login(stack.admin_email.upper(), ADMIN_PASSWORD)  # email case does not matter
    assert set(body) >= {"user", "token", "refresh_token", "expires_in"}
    assert body["user"]["email"] == stack.admin_email and body["user"]["role"] == "admin"
    assert "password" not in json.dumps(body["user"])
    wrong = stack.anon.post("/auth/login", json={"email": stack.admin_email, "password": "x" * 12})
    unknown = stack.anon.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"]


def test_refresh_rotates_and_reuse_revokes_the_family(stack: Stack) -> None:
    user = stack.user("viewer")
    first = user.session["refresh_token"]
    rotated = stack.anon.post("/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert set(second) >= {"token", "refresh_token"} and second["refresh_token"] != first
    assert status_with(stack, second["token"]) == 200

    # The old refresh token is used again: someone holds a copy. The whole family ends.
    reused = stack.anon.post("/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    assert "already used" in reused.json()["error"]
    assert (
        stack.anon.post(
            "/auth/refresh", json={"refresh_token": second["refresh_token"]}
        ).status_code
        == 401
    )
    bound = seconds_until(lambda: status_with(stack, second["token"]) == 401)
    assert bound <= REVOCATION_BOUND_SECONDS
    assert status_with(stack, user.session["token"]) == 401  # same session, also gone
    # Another session of the same user is untouched.
    other = stack.login(user.email, user.password)
    assert status_with(stack, other["token"]) == 200


def test_logout_revokes_the_access_token_within_the_bound(stack: Stack) -> None:
    user = stack.user("viewer")
    token = user.session["token"]
    assert status_with(stack, token) == 200
    reply = stack.anon.post("/auth/logout", headers=bearer(token))
    assert reply.status_code == 200
    bound = seconds_until(lambda: status_with(stack, token) == 401)
    assert bound <= REVOCATION_BOUND_SECONDS
    refreshed = stack.anon.post(
        "/auth/refresh", json={"refresh_token": user.session["refresh_token"]}
    )
    assert refreshed.status_code == 401


def test_role_change_revokes_sessions_and_applies_the_new_role(stack: Stack) -> None:
    user = stack.user("editor")
    token = user.session["token"]
    assert httpx.get(f"{stack.base_url}/auth/me", headers=bearer(token)).json()["user"]["role"] == (
        "editor"
    )
    changed = stack.client.patch(f"/api/users/{user.id}", json={"role": "viewer"})
    assert changed.status_code == 200 and changed.json()["data"]["role"] == "viewer"
    bound = seconds_until(lambda: status_with(stack, token) == 401)
    assert bound <= REVOCATION_BOUND_SECONDS
    again = stack.login(user.email, user.password)
    created = httpx.post(
        f"{stack.base_url}/api/content",
        headers=bearer(again["token"]),
        json={"collection": "blog_posts", "title": "as viewer"},
    )
    assert created.status_code == 403


def test_password_change_and_disable_end_sessions(stack: Stack) -> None:
    user = stack.user("author")
    token = user.session["token"]
    weak = user.client.post(
        "/auth/password", json={"current_password": user.password, "new_password": "password123"}
    )
    assert weak.status_code == 400
    changed = user.client.post(
        "/auth/password",
        json={"current_password": user.password, "new_password": "a-New-pw-for-tests-1"},
    )
    assert changed.status_code == 200, changed.text
    assert seconds_until(lambda: status_with(stack, token) == 401) <= REVOCATION_BOUND_SECONDS
    assert (
        stack.anon.post(
            "/auth/login", json={"email": user.email, "password": user.password}
        ).status_code
        == 401
    )
    fresh = stack.login(user.email, "a-New-pw-for-tests-1")

    assert (
        stack.client.patch(f"/api/users/{user.id}", json={"status": "disabled"}).status_code == 200
    )
    assert seconds_until(lambda: status_with(stack, fresh["token"]) == 401) <= (
        REVOCATION_BOUND_SECONDS
    )
    denied = stack.anon.post(
        "/auth/login", json={"email": user.email, "password": "a-New-pw-for-tests-1"}
    )
    assert denied.status_code == 401 and "disabled" in denied.json()["error"]


def test_privileged_fields_are_refused_and_change_nothing(stack: Stack) -> None:
    user = stack.user("author")
    for body in ({"role": "admin"}, {"display_name": "x", "status": "active"}, {"email": "a@b.c"}):
        reply = user.client.patch("/auth/me", json=body)
        assert reply.status_code == 400, reply.text
    me = user.client.get("/auth/me").json()["user"]
    assert me["role"] == "author" and me["email"] == user.email
    register = stack.anon.post(
        "/auth/register",
        json={"email": "new@example.com", "password": USER_PASSWORD, "role": "admin"},
    )
    assert register.status_code == 400
    closed = stack.anon.post(
        "/auth/register", json={"email": "new@example.com", "password": USER_PASSWORD}
    )
    assert closed.status_code == 403  # registration is off unless the operator enables it
    created = user.client.post(
        "/api/content",
        json={"collection": "blog_posts", "title": "mine", "author_id": stack.admin_email},
    )
    assert created.status_code == 400
    assert not auth_rows(stack, "SELECT id FROM users WHERE email_key = 'new@example.com'")


def test_no_escalation_through_users_or_roles(stack: Stack) -> None:
    editor = stack.user("editor")
    make_admin = {"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "password": USER_PASSWORD}
    assert editor.client.post("/api/users", json={**make_admin, "role": "admin"}).status_code == 403
    assert (
        editor.client.put("/api/roles/editor", json={"permissions": ["users.create"]}).status_code
        == 403
    )
    # An admin lets editors manage users; they still cannot hand out more than they hold.
    roles = {r["name"]: r for r in stack.client.get("/api/roles").json()["data"]}
    editor_permissions = roles["editor"]["permissions"]
    widened = stack.client.put(
        "/api/roles/editor",
        json={"permissions": [*editor_permissions, "users.create", "users.read"]},
    )
    assert widened.status_code == 200
    try:
        seconds_until(
            lambda: editor.client.get("/api/users").status_code == 200, timeout=5
        )  # permission changes apply within seconds
        assert (
            editor.client.post("/api/users", json={**make_admin, "role": "admin"}).status_code
            == 403
        )
        viewer = editor.client.post("/api/users", json={**make_admin, "role": "viewer"})
        assert viewer.status_code == 201, viewer.text
    finally:
        stack.client.put("/api/roles/editor", json={"permissions": editor_permissions})
    assert stack.client.put("/api/roles/admin", json={"permissions": []}).status_code == 403
    assert stack.anon.get("/api/users").status_code == 401


def test_api_tokens_are_scoped_hashed_and_revocable(stack: Stack) -> None:
    author = stack.user("author")
    too_wide = author.client.post("/api/tokens", json={"name": "x", "permissions": ["users.read"]})
    assert too_wide.status_code == 403
    created = stack.client.post(
        "/api/tokens", json={"name": "reader", "permissions": ["content.read"]}
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    token = data["token"]
    assert token.startswith("heron_") and data["prefix"] == token[: len(data["prefix"])]
    # Stored as a hash only.
    stored = auth_rows(stack, "SELECT token_hash, prefix FROM api_tokens")
    assert all(token not in json.dumps(row) for row in stored)

    listed = httpx.get(f"{stack.base_url}/api/content", headers=bearer(token))
    assert listed.status_code == 200
    assert "draft" in {i["status"] for i in listed.json()["data"]}  # content.read sees drafts
    write = httpx.post(
        f"{stack.base_url}/api/content",
        headers=bearer(token),
        json={"collection": "blog_posts", "title": "by token"},
    )
    assert write.status_code == 403  # the admin may, the token's scope may not
    assert "token" not in json.dumps(stack.client.get("/api/tokens").json()["data"][-1])
    assert stack.client.get("/api/tokens").json()["data"][-1]["last_used_at"] is not None

    assert stack.client.delete(f"/api/tokens/{data['id']}").status_code == 200
    bound = seconds_until(lambda: status_with(stack, token, "/api/content") == 401)
    assert bound <= REVOCATION_BOUND_SECONDS


def test_browser_session_cookie_needs_csrf_for_writes(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url.replace("127.0.0.1", "localhost")) as browser:
        reply = browser.post(
            "/auth/login", json={"email": stack.admin_email, "password": ADMIN_PASSWORD}
        )
        assert reply.status_code == 200
        cookies = reply.headers.get_list("set-cookie")
        access_cookie = next(c for c in cookies if c.startswith("auth_token="))
        assert "HttpOnly" in access_cookie and "Secure" in access_cookie
        assert "samesite=strict" in access_cookie.lower()
        # httpx keeps Secure cookies for localhost only over https; send them by hand.
        jar = {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in cookies}
        header = "; ".join(f"{k}={v}" for k, v in jar.items())
        me = browser.get("/auth/me", headers={"cookie": header})
        assert me.status_code == 200
        item = {"collection": "blog_posts", "title": "via cookie", "data": {"content": "b"}}
        forged = browser.post("/api/content", headers={"cookie": header}, json=item)
        assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]
        ok = browser.post(
            "/api/content",
            headers={"cookie": header, "x-csrf-token": jar["csrf_token"]},
            json=item,
        )
        assert ok.status_code == 201, ok.text


def test_signing_key_rotation_keeps_issued_tokens_valid(stack: Stack) -> None:
    user = stack.user("viewer")
    old_token = user.session["token"]
    old_kid = parts(old_token)[0]["kid"]
    rotated = stack.client.post("/api/auth/keys/rotate")
    assert rotated.status_code == 200
    kids = {k["kid"] for k in httpx.get(f"{stack.base_url}/.well-known/jwks.json").json()["keys"]}
    assert old_kid in kids and len(kids) >= 2
    assert all("d" not in k for k in rotated.json()["keys"])  # public halves only
    new_token = stack.login(user.email, user.password)["token"]
    assert parts(new_token)[0]["kid"] != old_kid
    assert status_with(stack, old_token) == 200
    assert status_with(stack, new_token) == 200
    assert stack.anon.post("/api/auth/keys/rotate").status_code == 401
    assert user.client.post("/api/auth/keys/rotate").status_code == 403
