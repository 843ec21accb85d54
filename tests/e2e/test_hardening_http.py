"""HTTP behaviour a client relies on: methods, HEAD, media types, query parameters, errors in
one shape, CORS, request ids, the offline API description."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack, start_stack


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


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/content/{id}", {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
        ("/api/content", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/collections/blog_posts", {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
        ("/auth/refresh", {"POST", "OPTIONS"}),
        ("/auth/login", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/auth/me", {"GET", "HEAD", "PATCH", "OPTIONS"}),
        ("/api/users/{id}", {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}),
    ],
)
def test_405_and_options_list_every_method_of_the_path(
    stack: Stack, path: str, allow: set[str]
) -> None:
    url = path.format(id=str(uuid.uuid4()))
    options = stack.anon.options(url)
    assert options.status_code == 204
    assert {m.strip() for m in options.headers["allow"].split(",")} == allow
    refused = stack.client.request("TRACE" if "POST" in allow else "POST", url, json={})
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == allow
    assert _error(refused)["code"] == "method_not_allowed"


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


@pytest.mark.parametrize(
    "given", ["<script>alert(1)</script>", 'a"b', "a\\b", "a b", "x" * 129, "é"]
)
def test_hostile_request_ids_are_replaced(stack: Stack, given: str) -> None:
    reply = stack.anon.get("/health", headers={"x-request-id": given.encode("utf-8")})
    echoed = reply.headers["x-request-id"]
    assert echoed != given and len(echoed) == 32 and echoed.isalnum()


def test_well_formed_request_ids_are_kept(stack: Stack) -> None:
    given = "trace-01.2:ab_C"
    assert (
        stack.anon.get("/health", headers={"x-request-id": given}).headers["x-request-id"] == given
    )


def test_the_api_description_is_served_offline_with_a_strict_csp(stack: Stack) -> None:
    page = stack.anon.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp
    assert "cdn" not in page.text and "http" not in page.text and "<script>" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "heron-docs.js"):
        reply = stack.anon.get(f"/docs/assets/{asset}")
        assert reply.status_code == 200 and len(reply.content) > 100, asset
        assert f"/docs/assets/{asset}" in page.text
    assert "SwaggerUIBundle" in stack.anon.get("/docs/assets/swagger-ui-bundle.js").text
    assert stack.anon.get("/docs/assets/../settings.py").status_code == 404
    assert stack.anon.get("/docs/assets/secret.txt").status_code in (400, 404)


@pytest.fixture
def cors_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(
        tmp_path, extra_env={"HERON_GATEWAY_CORS_ORIGINS": '["https://app.example.com"]'}
    )
    yield running
    running.stop()


def test_cors_allows_conditional_requests_and_exposes_cache_headers(cors_stack: Stack) -> None:
    stack = cors_stack
    origin = {"origin": "https://app.example.com"}
    preflight = stack.anon.options(
        "/api/content",
        headers={
            **origin,
            "access-control-request-method": "GET",
            "access-control-request-headers": "if-none-match, if-match, cache-control",
        },
    )
    assert preflight.status_code == 200, preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"if-none-match", "if-match", "cache-control"} <= {h.strip() for h in allowed.split(",")}
    reply = stack.anon.get("/api/collections", headers=origin)
    exposed = {h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {
        "etag",
        "location",
        "x-cache-status",
        "x-cache-source",
        "x-request-id",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    }
    refused = stack.anon.options(
        "/api/content",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert refused.status_code == 400
    assert "not allowed" in str(_error(refused)["error"])
