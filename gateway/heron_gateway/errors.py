"""The one error body and its handlers.

SonicJS's clients read the message from `error`, so it is a string; the machine-readable
`code`, the `request_id` and field-addressed `details` sit beside it:
`{"error": "<message>", "code": "not_found", "request_id": "...", "details": [...]}`.
Under `/admin/` (SonicJS's admin routes answer `{success: false, error}`) the body also has
`"success": false`, whether a route or the middleware before it answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from heron_common.context import request_id_var
from heron_common.errors import DomainError, ErrorDetail, Unauthenticated, Unavailable
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

logger = logging.getLogger("heron.gateway")
ADMIN_PREFIX = "/admin/"

_HTTP_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
    504: "deadline_exceeded",
}


def error_body(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    code: str = "",
    path: str = "",
) -> bytes:
    body: dict[str, Any] = {
        "error": message,
        "code": code or _HTTP_CODES.get(status, "error"),
        "request_id": request_id_var.get(),
        "details": details or [],
    }
    if path.startswith(ADMIN_PREFIX):
        body = {"success": False, **body}
    return orjson.dumps(body)


def error_response(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    code: str = "",
    headers: Mapping[str, str] | None = None,
    path: str = "",
) -> Response:
    return Response(
        error_body(status, message, details, code, path),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        source, rest = parts[0], parts[1:]
        return ".".join(rest) if source == "body" and rest else ".".join([source, *rest])
    return ".".join(parts)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = dict(exc.headers)
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = "1"
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="heron"'
    return error_response(
        exc.http_status,
        exc.message,
        [d.to_dict() for d in exc.details],
        exc.code,
        headers,
        request.url.path,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return error_response(
                400,
                "The request body is not valid JSON.",
                [
                    {
                        "field": "body",
                        "message": str(err.get("ctx", {}).get("error", "invalid JSON")),
                    }
                ],
                path=request.url.path,
            )
        details.append(ErrorDetail(_location(tuple(err.get("loc", ()))), err["msg"]).to_dict())
    return error_response(400, "Validation failed; see details.", details, path=request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers, path=request.url.path)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return error_response(500, "Internal error.", path=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
