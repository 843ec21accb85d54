"""HTTP behaviour a client relies on that needs the services behind the gateway: HEAD, media
types, query parameters, errors in one shape (what the gateway answers alone is in
tests/unit/gateway/test_http_edges.py)."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.conftest import Stack


def _error(reply: httpx.Response) -> dict[str, object]:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert set(body) >= {"error", "code", "request_id", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == reply.headers["x-request-id"]
    return dict(body)


def _item(stack: Stack) -> str:
    reply = stack.client.post(
        "/api/content",
        json={
            "collection": "blog_posts",
            "title": f"http {uuid.uuid4().hex[:6]}",
            "data": {"content": "b"},
            "status": "published",
        },
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["data"]["id"])


def test_head_works_wherever_get_does(stack: Stack) -> None:
    item_id = _item(stack)
    for url in (
        f"/api/content/{item_id}",
        "/api/collections",
        "/health",
        "/openapi.json",
        "/api/collections/blog_posts/content?limit=5",
    ):
        get = stack.anon.get(url)
        head = stack.anon.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content))
        assert head.headers["content-type"] == get.headers["content-type"]
    # Served from the page cache like GET.
    assert stack.anon.head(f"/api/content/{item_id}").headers["x-cache-status"] == "HIT"
    assert stack.anon.head(f"/api/content/{uuid.uuid4()}").status_code == 404


def test_a_body_that_is_not_json_is_415_before_validation(stack: Stack) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        reply = stack.client.post(
            "/api/content", content=b"title=x", headers={"content-type": content_type}
        )
        assert reply.status_code == 415, (content_type, reply.text)
        assert _error(reply)["code"] == "unsupported_media_type"
    missing = stack.client.post("/api/content", content=b'{"title": "x"}')
    assert missing.status_code == 415
    # JSON with a charset, and +json, are JSON.
    ok = stack.client.post(
        "/api/content",
        content=b'{"collection": "blog_posts", "title": "typed", "data": {"content": "b"}}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201, ok.text


def test_anonymous_writes_are_401_before_the_body_is_read(stack: Stack) -> None:
    for method, url in (
        ("POST", "/api/content"),
        ("PATCH", f"/api/content/{uuid.uuid4()}"),
        ("PUT", "/api/roles/public"),
        ("POST", "/api/collections"),
    ):
        for body in (b"not json at all", b"{}"):
            reply = stack.anon.request(
                method, url, content=body, headers={"content-type": "text/plain"}
            )
            assert reply.status_code == 401, (method, url, reply.text)
            assert _error(reply)["code"] == "unauthenticated"
    # Routes open to anyone still read their body.
    login = stack.anon.post(
        "/auth/login", content=b"{", headers={"content-type": "application/json"}
    )
    assert login.status_code == 400


def test_unknown_query_parameters_are_refused_and_do_not_churn_the_cache(stack: Stack) -> None:
    reply = stack.anon.get("/api/collections/blog_posts/content?limit=5&junk=1&limt=3")
    assert reply.status_code == 400
    error = _error(reply)
    assert "junk" in str(error["error"]) and "limt" in str(error["error"])
    assert {"query.junk", "query.limt"} <= {d["field"] for d in error["details"]}  # type: ignore[union-attr]

    def entries() -> int:
        stats = stack.client.get("/api/cache/stats").json()["data"]["gateway"]
        return int(stats["memory"]["entries"])

    before = entries()
    for n in range(50):
        assert stack.anon.get(f"/api/content?junk={n}").status_code == 400
    assert entries() == before
    # Known parameters in any order share one entry.
    first = stack.anon.get("/api/content?limit=3&offset=0")
    second = stack.anon.get("/api/content?offset=0&limit=3")
    assert first.status_code == second.status_code == 200
    assert second.headers["x-cache-status"] == "HIT"
