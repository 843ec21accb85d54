"""The gateway's ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from heron_gateway.errors import install_error_handlers
from heron_gateway.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
    UrlHygieneMiddleware,
)
from heron_gateway.response_cache import ResponseCacheMiddleware
from heron_gateway.routes import auth, cache, collections, content, health, users
from heron_gateway.settings import GatewaySettings
from heron_gateway.upstreams import Upstreams

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")


def create_app(settings: GatewaySettings) -> ASGIApp:
    """Build the FastAPI app and wrap it in the middleware pipeline (outermost first)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.upstreams = Upstreams(settings)
        await app.state.upstreams.start()
        try:
            yield
        finally:
            await app.state.upstreams.close()

    api = FastAPI(
        title="Heron",
        version="0.1.0",
        description="Headless CMS REST API.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(api)
    api.include_router(health.router)
    api.include_router(collections.router)
    api.include_router(content.router)
    api.include_router(auth.router)
    api.include_router(users.router)
    api.include_router(cache.router)

    app: ASGIApp = UrlHygieneMiddleware(ResponseCacheMiddleware(api, api))
    app = BodySizeLimitMiddleware(app, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-Id",
                "X-CSRF-Token",
            ],
            expose_headers=[
                "X-Request-Id",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
            ],
            max_age=600,
        )
    app = SecurityHeadersMiddleware(app, hsts=settings.hsts, docs_paths=DOCS_PATHS)
    app = AccessLogMiddleware(app)
    return RequestIdMiddleware(app)
