"""The gateway's pure ASGI middleware on a tiny app."""

from __future__ import annotations

import logging

import httpx
import pytest
from heron_common.context import request_id_var
from heron_gateway.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from heron_gateway.observability import RouteNames
from heron_gateway.routing import RouteTable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def echo(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"{request_id_var.get()}|{len(body)}")


def make_client() -> httpx.AsyncClient:
    inner = Starlette(routes=[Route("/x", echo, methods=["GET", "POST"])])
    app = RequestIdMiddleware(
        AccessLogMiddleware(
            SecurityHeadersMiddleware(
                BodySizeLimitMiddleware(inner, max_bytes=10), docs_prefix="/docs"
            ),
            RouteNames(RouteTable(inner.routes)),
        )
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_request_id_bound_and_echoed() -> None:
    reply = await make_client().get("/x", headers={"x-request-id": "abc"})
    assert reply.text == "abc|0"
    assert reply.headers["x-request-id"] == "abc"


async def test_request_id_with_control_characters_is_replaced() -> None:
    reply = await make_client().get("/x", headers={"x-request-id": "a\tb"})
    assert reply.headers["x-request-id"] != "a\tb"
    assert reply.text.startswith(reply.headers["x-request-id"])


async def test_an_unhandled_error_is_a_json_500_with_the_request_id() -> None:
    async def broken(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("secret internals")

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=RequestIdMiddleware(broken), raise_app_exceptions=False),
        base_url="http://test",
    )
    reply = await client.get("/x", headers={"x-request-id": "req-1"})
    assert reply.status_code == 500
    assert reply.json() == {
        "error": "Internal error.",
        "code": "internal",
        "request_id": "req-1",
        "details": [],
    }
    assert reply.headers["x-request-id"] == "req-1"
    assert "secret" not in reply.text


async def test_security_headers() -> None:
    reply = await make_client().get("/x")
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")


async def test_body_limit_by_header() -> None:
    reply = await make_client().post("/x", content=b"x" * 11)
    assert reply.status_code == 413
    assert reply.json()["code"] == "payload_too_large"
    assert (await make_client().post("/x", content=b"x" * 10)).text.endswith("|10")


async def test_access_log_has_path_not_query(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="heron.access"):
        await make_client().get("/x?token=secret", headers={"x-request-id": "r1"})
    record = next(r for r in caplog.records if r.name == "heron.access")
    assert record.__dict__["path"] == "/x"
    assert record.__dict__["status"] == 200
    assert "secret" not in str(record.__dict__)


def test_text_logs_cannot_be_forged() -> None:
    from heron_common.logging import TextFormatter

    record = logging.makeLogRecord(
        {"msg": "request", "path": "/x\n2026-01-01 INFO gateway heron.access: request", "status": 1}
    )
    line = TextFormatter("gateway").format(record)
    assert "\n" not in line
    assert 'path="/x\\n2026' in line
