"""What the gateway answers on its own, before any service is asked: methods, unknown routes,
tokens in URLs, request ids, security headers, the body limit, CORS and the offline API
description. A gateway with no service behind it answers all of it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.unit.gateway.conftest import gateway_client


def _error(reply: httpx.Response) -> dict[str, object]:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert set(body) >= {"error", "code", "request_id", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == reply.headers["x-request-id"]
    return dict(body)


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
async def test_405_and_options_list_every_method_of_the_path(
    gateway: httpx.AsyncClient, path: str, allow: set[str]
) -> None:
    url = path.format(id=str(uuid.uuid4()))
    options = await gateway.options(url)
    assert options.status_code == 204
    assert {m.strip() for m in options.headers["allow"].split(",")} == allow
    refused = await gateway.request("TRACE" if "POST" in allow else "POST", url, json={})
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == allow
    assert _error(refused)["code"] == "method_not_allowed"


async def test_unknown_route_and_method(gateway: httpx.AsyncClient) -> None:
    missing = await gateway.get("/api/nothing-here")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"
    wrong = await gateway.post("/api/collections/blog_posts/content")
    assert wrong.status_code == 405 and _error(wrong)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "query",
    ["access_token={t}", "token={t}", "api_key={t}", "ACCESS_TOKEN={t}", "q={t}", "jwt=x"],
)
async def test_tokens_in_the_url_are_refused(gateway: httpx.AsyncClient, query: str) -> None:
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    reply = await gateway.get(f"/api/content?{query.format(t=token)}")
    assert reply.status_code == 401
    assert "URL" in str(_error(reply)["error"])


@pytest.mark.parametrize(
    "given", ["<script>alert(1)</script>", 'a"b', "a\\b", "a b", "x" * 129, "x" * 500, "é"]
)
async def test_hostile_request_ids_are_replaced(gateway: httpx.AsyncClient, given: str) -> None:
    reply = await gateway.get("/health", headers={"x-request-id": given.encode("utf-8")})
    echoed = reply.headers["x-request-id"]
    assert echoed != given and len(echoed) == 32 and echoed.isalnum()


async def test_request_ids_are_kept_when_well_formed_and_made_when_missing(
    gateway: httpx.AsyncClient,
) -> None:
    given = "trace-01.2:ab_C"
    assert (await gateway.get("/health", headers={"x-request-id": given})).headers[
        "x-request-id"
    ] == given
    missing = await gateway.get("/api/nothing-here", headers={"x-request-id": "req-42"})
    assert missing.headers["x-request-id"] == "req-42"
    assert _error(missing)["request_id"] == "req-42"
    assert len((await gateway.get("/health")).headers["x-request-id"]) == 32


async def test_security_headers_and_body_limit(gateway: httpx.AsyncClient) -> None:
    for reply in (await gateway.get("/health"), await gateway.get("/api/nothing-here")):
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in reply.headers["content-security-policy"]
    huge = await gateway.post(
        "/api/content",
        content=b'{"title":"' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json", "authorization": "Bearer x.y.z"},
    )
    assert huge.status_code == 413 and _error(huge)["code"] == "payload_too_large"


async def test_the_api_description_is_served_offline_with_a_strict_csp(
    gateway: httpx.AsyncClient,
) -> None:
    page = await gateway.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp
    assert "cdn" not in page.text and "http" not in page.text and "<script>" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "heron-docs.js"):
        reply = await gateway.get(f"/docs/assets/{asset}")
        assert reply.status_code == 200 and len(reply.content) > 100, asset
        assert f"/docs/assets/{asset}" in page.text
    assert "SwaggerUIBundle" in (await gateway.get("/docs/assets/swagger-ui-bundle.js")).text
    assert (await gateway.get("/docs/assets/../settings.py")).status_code == 404
    assert (await gateway.get("/docs/assets/secret.txt")).status_code in (400, 404)


async def test_cors_allows_conditional_requests_and_exposes_cache_headers() -> None:
    async with gateway_client(cors_origins=["https://app.example.com"]) as gateway:
        origin = {"origin": "https://app.example.com"}
        preflight = await gateway.options(
            "/api/content",
            headers={
                **origin,
                "access-control-request-method": "GET",
                "access-control-request-headers": "if-none-match, if-match, cache-control",
            },
        )
        assert preflight.status_code == 200, preflight.text
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"if-none-match", "if-match", "cache-control"} <= {
            h.strip() for h in allowed.split(",")
        }
        reply = await gateway.get("/health", headers=origin)
        exposed = {
            h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")
        }
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
        refused = await gateway.options(
            "/api/content",
            headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
        )
        assert refused.status_code == 400
        assert "not allowed" in str(_error(refused)["error"])
