"""The gateway's ASGI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from heron_common import tracing
from heron_common.errors import DomainError
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from heron_gateway.admin_ui import collections as admin_collections
from heron_gateway.admin_ui import editor as admin_editor
from heron_gateway.admin_ui import media as admin_media
from heron_gateway.admin_ui import pages as admin_pages
from heron_gateway.admin_ui import plugins as admin_plugins
from heron_gateway.admin_ui import users as admin_users
from heron_gateway.errors import error_body, install_error_handlers
from heron_gateway.hot_path import HotPathMiddleware
from heron_gateway.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
    UrlHygieneMiddleware,
)
from heron_gateway.observability import RouteNames, traced
from heron_gateway.response_cache import ResponseCacheMiddleware
from heron_gateway.routes import (
    admin,
    admin_cache,
    auth,
    cache,
    collections,
    content,
    docs,
    health,
    media,
    passwordless,
    plugins,
    revisions,
    users,
)
from heron_gateway.routing import HeadAsGetMiddleware, RouteGuardMiddleware, RouteTable
from heron_gateway.settings import GatewaySettings
from heron_gateway.upstreams import Upstreams

logger = logging.getLogger("heron.gateway")
DOCS_PREFIX = "/docs"


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with its refusals in the one JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        message = (
            f"This cross-origin request is not allowed (its {failures} are not permitted); "
            "the origins are set in HERON_GATEWAY_CORS_ORIGINS."
        )
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")
        }
        return Response(
            error_body(400, message),
            status_code=400,
            media_type="application/json",
            headers=headers,
        )


def create_app(settings: GatewaySettings) -> ASGIApp:
    """Build the FastAPI app and wrap it in the middleware pipeline (outermost first)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        if not settings.internal_secret:
            logger.warning(
                "HERON_INTERNAL_SECRET is not set: the auth service counts every sign-in "
                "through this gateway under the gateway's own address. Set the same secret "
                "in every Heron process."
            )
        app.state.upstreams = Upstreams(settings)
        await app.state.upstreams.start()
        try:
            yield
        finally:
            await app.state.upstreams.close()
            tracing.shutdown()

    api = FastAPI(
        title="Heron",
        version="0.1.0",
        description="Headless CMS REST API.",
        lifespan=lifespan,
        docs_url=None,  # served from a pinned copy: routes/docs.py
        redoc_url=None,
        openapi_url="/openapi.json",
        # The request's span is the OpenTelemetry ASGI middleware's, around the whole stack
        # (heron_gateway.observability): FastAPI's own would start a second trace inside it.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(api)
    described = api.openapi

    def openapi() -> dict[str, Any]:
        """The API description, with the routes of the plugins active now."""
        upstreams: Upstreams | None = getattr(api.state, "upstreams", None)
        document = described()
        if upstreams is None:
            return document
        return plugins.with_active_routes(document, upstreams.active_plugins.routes)

    api.openapi = openapi  # type: ignore[method-assign]
    api.include_router(health.router)
    api.include_router(collections.router)
    api.include_router(content.router)
    api.include_router(media.router)
    api.include_router(plugins.router)
    api.include_router(revisions.router)
    api.include_router(auth.router)
    api.include_router(passwordless.router)
    api.include_router(users.router)
    api.include_router(cache.router)
    api.include_router(admin.router)
    api.include_router(admin_cache.router)
    api.include_router(docs.router)
    api.include_router(admin_pages.router)
    api.include_router(admin_editor.bulk_router)
    api.include_router(admin_editor.router)
    api.include_router(admin_collections.router)
    api.include_router(admin_media.bulk_router)
    api.include_router(admin_media.router)
    api.include_router(admin_users.router)
    api.include_router(admin_plugins.router)
    api.add_exception_handler(admin_pages.PageError, admin_pages.page_error)
    api.add_exception_handler(
        DomainError, admin_pages.domain_errors(api.exception_handlers[DomainError])
    )

    # The route guard sits behind the page cache (a hit never pays for it); HEAD is turned into
    # GET in front of it, so HEAD is answered from the cache too.
    table = RouteTable(api.routes)
    routes = RouteNames(table)
    guarded = RouteGuardMiddleware(api, table)
    pages = ResponseCacheMiddleware(guarded, api)
    app: ASGIApp = UrlHygieneMiddleware(HeadAsGetMiddleware(pages))
    app = BodySizeLimitMiddleware(app, max_bytes=settings.max_body_bytes, exempt=media.UPLOAD_PATHS)
    if settings.cors_origins:
        app = JsonCORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-Id",
                "X-CSRF-Token",
                "If-None-Match",
                "If-Match",
                "Cache-Control",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "X-Cache-Status",
                "X-Cache-Source",
                "X-Cache-TTL",
                "X-Request-Id",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
                "Retry-After",
            ],
            max_age=600,
        )
    security = SecurityHeadersMiddleware(app, hsts=settings.hsts, docs_prefix=DOCS_PREFIX)
    app = RequestIdMiddleware(AccessLogMiddleware(security, routes))
    # Cache hits skip the chain above (each layer's headers are added there in one list).
    hot = HotPathMiddleware(
        app,
        pages,
        security.api_headers,
        cors=bool(settings.cors_origins),
        file_headers=security.file_headers,
        routes=routes,
    )
    return traced(hot, routes)
