"""SonicJS's clients work unchanged: its auth flow, field names, status codes, messages and
cookies, its default collections and its small routes, through the gateway of a real stack
(with registration enabled, as SonicJS has it).

Each test here backs a "same" row of the README's SonicJS compatibility table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from tests.e2e.auth_helpers import bearer, seconds_until, status_with
from tests.e2e.conftest import ADMIN_PASSWORD, USER_PASSWORD, Stack, start_stack

SIGNED_OUT = "/auth/login?message=You%20have%20been%20logged%20out%20successfully"


@pytest.fixture(scope="module")
def sonic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("sonicjs"),
        extra_env={"HERON_AUTH_REGISTRATION_ENABLED": "true"},
    )
    yield stack
    stack.stop()


def browser(stack: Stack) -> httpx.Client:
    """A client like a browser on the same site (Secure cookies go to localhost over http)."""
    return httpx.Client(base_url=stack.base_url.replace("127.0.0.1", "localhost"), timeout=15)


def set_cookies(reply: httpx.Response) -> dict[str, dict[str, str]]:
    """name → {"value": ..., attribute: value} of each Set-Cookie of `reply`."""
    found: dict[str, dict[str, str]] = {}
    for header in reply.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            attributes = {k: str(v) for k, v in morsel.items() if v}
            lowered = header.lower()
            attributes.update(
                {flag: "1" for flag in ("httponly", "secure") if f"; {flag}" in lowered}
            )
            found[name] = {"value": morsel.value, **attributes}
    return found


def cookie_header(jar: dict[str, dict[str, str]]) -> str:
    return "; ".join(f"{name}={c['value']}" for name, c in jar.items() if c["value"])


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_register_login_me_refresh_logout_as_a_sonicjs_client(sonic: Stack) -> None:
    name = unique("jane")
    email = f"{name.capitalize()}@Example.COM"
    with browser(sonic) as web:
        registered = web.post(
            "/auth/register",
            json={
                "email": email,
                "password": USER_PASSWORD,
                "username": name.upper(),
                "firstName": "Jane",
                "lastName": "Doe",
            },
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        assert body["token"]
        user = body["user"]
        assert user["email"] == email.lower()
        assert (user["username"], user["firstName"], user["lastName"]) == (name, "Jane", "Doe")
        assert user["role"] == "viewer" and user["id"]

        # Taken email (in any case) or username (in any case): "already exists".
        for clash in ({"email": email.upper()}, {"email": f"x{email}", "username": name.upper()}):
            again = web.post("/auth/register", json={"password": USER_PASSWORD, **clash})
            assert again.status_code == 409, again.text
            assert "already exists" in again.json()["error"]

        # Login by the email in another case: {user, token, refresh_token} and the cookies.
        login = web.post("/auth/login", json={"email": email.upper(), "password": USER_PASSWORD})
        assert login.status_code == 200, login.text
        session = login.json()
        assert {"user", "token", "refresh_token"} <= set(session)
        assert session["user"]["username"] == name and session["user"]["firstName"] == "Jane"
        jar = set_cookies(login)
        access = jar["auth_token"]
        assert access["value"] == session["token"]
        assert "httponly" in access and "secure" in access
        assert access["samesite"].lower() == "strict" and access["path"] == "/"
        assert "httponly" not in jar["csrf_token"] and jar["csrf_token"]["path"] == "/"
        assert jar["heron_refresh"]["path"] == "/auth" and "httponly" in jar["heron_refresh"]

        # /auth/me by bearer and by the auth_token cookie; SonicJS's snake_case names too.
        by_bearer = web.get("/auth/me", headers=bearer(session["token"]))
        me = by_bearer.json()["user"]
        assert by_bearer.status_code == 200
        assert (me["username"], me["firstName"], me["first_name"], me["last_name"]) == (
            name,
            "Jane",
            "Jane",
            "Doe",
        )
        cookies = cookie_header(jar)
        by_cookie = web.get("/auth/me", headers={"cookie": cookies})
        assert by_cookie.status_code == 200 and by_cookie.json()["user"]["id"] == user["id"]

        # A cookie-authenticated write needs the csrf_token cookie's value in X-CSRF-Token.
        change = {"firstName": "Janet"}
        forged = web.patch("/auth/me", headers={"cookie": cookies}, json=change)
        assert forged.status_code == 403
        changed = web.patch(
            "/auth/me",
            headers={"cookie": cookies, "x-csrf-token": jar["csrf_token"]["value"]},
            json=change,
        )
        assert changed.status_code == 200 and changed.json()["user"]["firstName"] == "Janet"

        # Refresh by the session cookie (with the CSRF token) and by the body.
        refreshed = web.post(
            "/auth/refresh",
            headers={"cookie": cookies, "x-csrf-token": jar["csrf_token"]["value"]},
        )
        assert refreshed.status_code == 200, refreshed.text
        jar.update(set_cookies(refreshed))
        assert jar["auth_token"]["value"] == refreshed.json()["token"]

        # Logout: SonicJS's message, the cookies cleared, the session over.
        out = web.post("/auth/logout", headers={"cookie": cookie_header(jar)})
        assert out.status_code == 200
        assert out.json()["message"] == "Logged out successfully"
        cleared = set_cookies(out)
        for cookie in ("auth_token", "csrf_token", "heron_refresh"):
            assert cleared[cookie]["max-age"] == "0" and not cleared[cookie]["value"], cookie
        token = refreshed.json()["token"]
        assert seconds_until(lambda: status_with(sonic, token) == 401) <= 3.0


def test_get_logout_clears_the_cookies_ends_the_session_and_redirects(sonic: Stack) -> None:
    email = f"{unique('leaver')}@example.com"
    assert (
        sonic.anon.post(
            "/auth/register", json={"email": email, "password": USER_PASSWORD}
        ).status_code
        == 201
    )
    with browser(sonic) as web:
        login = web.post("/auth/login", json={"email": email, "password": USER_PASSWORD})
        jar = set_cookies(login)
        out = web.get("/auth/logout", headers={"cookie": cookie_header(jar)})
        assert out.status_code == 302
        assert out.headers["location"] == SIGNED_OUT
        cleared = set_cookies(out)
        assert cleared["auth_token"]["max-age"] == "0"
        assert cleared["heron_refresh"]["max-age"] == "0"
        again = web.post("/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
        assert again.status_code == 401
        # Without a session there is nothing to end: still the redirect.
        assert web.get("/auth/logout").status_code == 302
        # The sign-in page shows the message, escaped.
        landed = web.get(out.headers["location"])
        assert landed.status_code == 200 and "text/html" in landed.headers["content-type"]
        assert "You have been logged out successfully" in landed.text
        hostile = web.get("/auth/login", params={"error": "<script>alert(1)</script>"})
        assert "<script>" not in hostile.text and "&lt;script&gt;" in hostile.text


def test_sonicjs_messages_for_bad_or_missing_credentials(sonic: Stack) -> None:
    for email in (sonic.admin_email, "nobody@example.com"):
        wrong = sonic.anon.post("/auth/login", json={"email": email, "password": "wrong-pw-123"})
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "Invalid email or password"
    for method, path in (("GET", "/auth/me"), ("POST", "/auth/refresh")):
        missing = sonic.anon.request(method, path)
        assert missing.status_code == 401, (path, missing.text)
        assert missing.json()["error"] == "Authentication required"
        assert missing.json()["code"] == "unauthenticated"


def test_registration_validates_like_sonicjs(sonic: Stack) -> None:
    bad_email = sonic.anon.post("/auth/register", json={"email": "no", "password": USER_PASSWORD})
    assert bad_email.status_code == 400
    assert "Validation failed" in bad_email.json()["error"]
    assert "email" in [d["field"] for d in bad_email.json()["details"]]
    for username in ("ab", "has space", "x" * 33, "admin"):
        reply = sonic.anon.post(
            "/auth/register",
            json={
                "email": f"{unique('u')}@example.com",
                "password": USER_PASSWORD,
                "username": username,
            },
        )
        assert reply.status_code == 400, (username, reply.text)
        assert "username" in [d["field"] for d in reply.json()["details"]], username


def test_a_username_not_given_comes_from_the_email(sonic: Stack) -> None:
    local = unique("sam.o+news")
    base = local.split("+", 1)[0]
    names = []
    for domain in ("example.com", "example.org"):
        reply = sonic.anon.post(
            "/auth/register", json={"email": f"{local}@{domain}", "password": USER_PASSWORD}
        )
        assert reply.status_code == 201, reply.text
        names.append(reply.json()["user"]["username"])
    assert names == [base, f"{base}2"]
    assert reply.json()["user"]["firstName"] == ""


def test_the_first_admin_is_admin_and_the_users_api_has_the_names(sonic: Stack) -> None:
    admin = sonic.login(sonic.admin_email, ADMIN_PASSWORD)["user"]
    assert admin["username"] == "admin" and admin["role"] == "admin"
    created = sonic.client.post(
        "/api/users",
        json={
            "email": f"{unique('Ed')}@Example.com",
            "password": USER_PASSWORD,
            "role": "editor",
            "username": unique("Ed."),
            "firstName": "Ed",
            "lastName": "Itor",
        },
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["username"].startswith("ed.") and data["email"] == data["email"].lower()
    listed = sonic.client.get("/api/users", params={"limit": 1000}).json()["data"]
    row = next(u for u in listed if u["id"] == data["id"])
    assert (row["firstName"], row["lastName"]) == ("Ed", "Itor")
    taken = sonic.client.patch(f"/api/users/{data['id']}", json={"username": "ADMIN"})
    assert taken.status_code == 409 and "already exists" in taken.json()["error"]
    renamed = sonic.client.patch(f"/api/users/{data['id']}", json={"lastName": "Tor"})
    assert renamed.json()["data"]["lastName"] == "Tor"


def test_api_health_answers_as_sonicjs(sonic: Stack) -> None:
    reply = sonic.anon.get("/api/health")
    assert reply.status_code == 200
    assert set(reply.json()) == {"status", "timestamp", "schemas"}
    assert reply.json()["status"] == "healthy" and reply.json()["timestamp"].endswith("Z")


def test_get_api_is_the_openapi_document(sonic: Stack) -> None:
    reply = sonic.anon.get("/api")
    assert reply.status_code == 200
    document = reply.json()
    assert document["openapi"].startswith("3.")
    assert {"/auth/login", "/api/content", "/api/collections"} <= set(document["paths"])


def test_unknown_collections_and_items_as_sonicjs_answers(sonic: Stack) -> None:
    for name in ("no_such_thing", "中文"):
        listed = sonic.anon.get("/api/content", params={"collection": name})
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"] == []
        assert listed.json()["meta"]["message"] == f"Collection '{name}' not found"
    per_collection = sonic.anon.get("/api/collections/no_such_thing/content")
    assert per_collection.status_code == 404
    assert per_collection.json()["error"] == "Collection not found"
    item = sonic.anon.get(f"/api/content/{uuid.uuid4()}")
    assert item.status_code == 404 and item.json()["error"] == "Content not found"


def test_a_fresh_store_has_sonicjs_collections_and_takes_sonicjs_writes(sonic: Stack) -> None:
    collections = sonic.anon.get("/api/collections").json()["data"]
    assert [c["name"] for c in collections[:3]] == ["pages", "blog_posts", "news"]
    assert {c["is_active"] for c in collections} == {1}
    first = collections[0]
    assert {"content", "excerpt"} <= set(first["schema"]["properties"])
    written = sonic.client.post(
        "/api/content",
        json={
            "collectionId": first["id"],
            "title": "Contact",
            "status": "published",
            "data": {"content": "<p>Write to us.</p>", "excerpt": "How to reach us"},
        },
    )
    assert written.status_code == 201, written.text
    item = written.json()["data"]
    assert item["collectionId"] == first["id"] and item["slug"] == "contact"
    public = sonic.anon.get(f"/api/content/{item['id']}").json()["data"]
    assert public["data"] == {"content": "<p>Write to us.</p>", "excerpt": "How to reach us"}


def test_a_browser_with_a_dead_session_can_still_sign_out_and_reach_sign_in(
    sonic: Stack,
) -> None:
    email = f"{unique('stale')}@example.com"
    sonic.anon.post("/auth/register", json={"email": email, "password": USER_PASSWORD})
    with browser(sonic) as web:
        login = web.post("/auth/login", json={"email": email, "password": USER_PASSWORD})
        jar = set_cookies(login)
        cookies = cookie_header(jar)
        # The session ends elsewhere (here: signed out by its refresh token, as another tab).
        assert (
            web.post(
                "/auth/logout", json={"refresh_token": login.json()["refresh_token"]}
            ).status_code
            == 200
        )
        token = login.json()["token"]
        assert seconds_until(lambda: status_with(sonic, token) == 401) <= 3.0
        assert web.get("/auth/me", headers={"cookie": cookies}).status_code == 401
        page = web.get("/auth/login", headers={"cookie": cookies})
        assert page.status_code == 200, page.text
        redirected = web.get("/auth/logout", headers={"cookie": cookies})
        assert redirected.status_code == 302
        assert set_cookies(redirected)["auth_token"]["max-age"] == "0"
        posted = web.post("/auth/logout", headers={"cookie": cookies})
        assert posted.status_code == 200 and posted.json()["message"] == "Logged out successfully"
        assert set_cookies(posted)["auth_token"]["max-age"] == "0"
