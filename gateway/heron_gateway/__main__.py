"""Entry point: `python -m heron_gateway` serves the REST API with uvicorn."""

from __future__ import annotations

import uvicorn
from heron_common import tracing
from heron_common.logging import configure_logging
from starlette.types import ASGIApp

from heron_gateway.app import create_app
from heron_gateway.serving import UVICORN_OPTIONS
from heron_gateway.settings import GatewaySettings


def app_from_env() -> ASGIApp:
    """Application factory for uvicorn workers: settings come from the environment."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    tracing.configure_tracing("gateway")
    return create_app(settings)


WORKERS_NEED_REDIS = (
    "HERON_GATEWAY_WORKERS is {workers}, but HERON_REDIS_URL is not set: each worker keeps "
    "its own page cache and rate limits, and only Redis tells the workers of each other's "
    "writes. Set HERON_REDIS_URL, or run one worker."
)


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    if settings.workers > 1 and not settings.redis_url:
        raise SystemExit(WORKERS_NEED_REDIS.format(workers=settings.workers))
    uvicorn.run(
        "heron_gateway.__main__:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=10,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: any local client could
        # pick its address and slip past per-address rate limits. Only configured proxies.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
