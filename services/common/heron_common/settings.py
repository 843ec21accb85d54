"""Settings base shared by every Heron process (pydantic-settings, one env prefix per process)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HeronSettings(BaseSettings):
    """Fields every process has. Subclasses set `model_config` with their own `env_prefix`.

    The fields here are shared by every process of an installation, so they are read from
    `HERON_*` names whatever the subclass's prefix (`HERON_DATA_DIR`, not
    `HERON_CONTENT_DATA_DIR`).
    """

    # An empty variable is an unset one (its default): deployment files list every setting,
    # and `HERON_CONTENT_COLLECTIONS_DIR=` must not mean the current directory.
    model_config = SettingsConfigDict(
        env_prefix="HERON_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    data_dir: Path = Field(
        default=Path("data"),
        validation_alias=AliasChoices("HERON_DATA_DIR"),
        description="Where embedded stores live.",
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("HERON_LOG_LEVEL"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("HERON_LOG_JSON"))
    jwt_issuer: str = Field(default="heron", validation_alias=AliasChoices("HERON_JWT_ISSUER"))
    jwt_audience: str = Field(
        default="heron-api", validation_alias=AliasChoices("HERON_JWT_AUDIENCE")
    )
    auth_target: str = Field(
        default="127.0.0.1:50051",
        validation_alias=AliasChoices("HERON_AUTH_TARGET"),
        description="host:port of the auth service (gRPC), which publishes the signing keys.",
    )
    content_target: str = Field(
        default="127.0.0.1:50052",
        validation_alias=AliasChoices("HERON_CONTENT_TARGET", "HERON_GATEWAY_CONTENT_TARGET"),
        description="host:port of the content service (gRPC): the gateway's upstream, and "
        "where the media service asks which files published items use.",
    )
    media_target: str = Field(
        default="127.0.0.1:50053",
        validation_alias=AliasChoices("HERON_MEDIA_TARGET", "HERON_GATEWAY_MEDIA_TARGET"),
        description="host:port of the media service (gRPC): the gateway's upstream, and where "
        "the content service checks and expands media fields.",
    )
    plugins_target: str = Field(
        default="127.0.0.1:50054",
        validation_alias=AliasChoices("HERON_PLUGINS_TARGET"),
        description="host:port of the plugins service (gRPC): the gateway's upstream, and "
        "where the services fire hooks.",
    )
    redis_url: str = Field(
        default="",
        validation_alias=AliasChoices("HERON_REDIS_URL", "REDIS_URL"),
        description="The shared Redis tier (L2 cache, invalidation bus, rate limits); empty "
        "means none: each process runs on its own memory, and stays correct.",
    )
    cache_enabled: bool = Field(
        default=True,
        validation_alias=AliasChoices("HERON_CACHE_ENABLED"),
        description="Whether reads go through the memory and Redis tiers (off: every read "
        "goes to the database; answers are the same).",
    )
    cache_ttl_seconds: float = Field(
        default=300.0,
        validation_alias=AliasChoices("HERON_CACHE_TTL_SECONDS"),
        description="How long an entry lives when nothing invalidates it first.",
    )
    internal_secret: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("HERON_INTERNAL_SECRET"),
        description="Shared by every Heron process of an installation: a service believes the "
        "client address the gateway forwards only with it. Empty: services count sign-in "
        "attempts under the address of the process calling them.",
    )
    redis_prefix: str = Field(
        default="heron",
        validation_alias=AliasChoices("HERON_REDIS_PREFIX"),
        description="Prefix of every Redis key and channel, so installations can share a Redis.",
    )


class ServiceSettings(HeronSettings):
    """A gRPC service with its own database."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/<service>.db.",
    )
    db_pool_size: int = 10
    auth_poll_seconds: float = Field(
        default=1.0, description="How often revocations and role changes are fetched."
    )
    shutdown_grace_seconds: float = 10.0
    shutdown_drain_seconds: float = Field(
        default=0.0,
        description="After SIGTERM, keep serving (health NOT_SERVING) this long before "
        "stopping, so replicas behind a load balancer restart without failed calls.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics (gRPC calls per method and code, latency, calls in "
        "flight, caches, the database pool) on this port at /metrics, on the gRPC host; 0: "
        "not served.",
    )
    peer_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        validation_alias=AliasChoices("HERON_PEER_TIMEOUT_SECONDS"),
        description="Deadline of a call from one service to another (the content and media "
        "services asking each other about files).",
    )

    def resolved_database_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"
