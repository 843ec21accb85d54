"""The one way a Heron process connects to the shared Redis tier.

Redis is optional and may fail at any time: every user of this client treats an error as
"Redis is not there right now" and falls back to its own memory. The client is tuned for that:
short socket timeouts so a dead Redis costs milliseconds, not seconds, and health checks so a
half-open connection is noticed.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

# What redis-py raises when the server is down, restarting, or the connection broke.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ResponseError,
    OSError,
)


def create_redis(url: str, *, timeout_seconds: float = 0.25) -> redis.Redis | None:
    """A pooled async client for `url`, or None when no Redis is configured.

    Nothing connects here; the first command does. Commands are not retried by the client
    (callers fall back instead), so an outage never multiplies a request's latency.
    """
    if not url:
        return None
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 0),
        max_connections=64,
        # "auto" (redis-py 8's default) skips the liveness check of pooled connections at
        # checkout, so after a Redis restart the first command on each stale one would fail.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
