"""Gateway settings (env prefix `HERON_GATEWAY_`)."""

from __future__ import annotations

from heron_common.settings import HeronSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class GatewaySettings(HeronSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_GATEWAY_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1,
        ge=1,
        description="Gateway worker processes; more than one needs HERON_REDIS_URL.",
    )
    media_max_request_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1,
        description="The largest upload request (every file and field of it together); each "
        "file is also held to HERON_MEDIA_MAX_FILE_BYTES by the media service.",
    )
    media_max_files: int = Field(default=20, ge=1, description="Files in one upload request.")
    media_max_parts: int = Field(
        default=50, ge=1, description="Parts (files and fields) in one multipart upload."
    )
    file_cache_max_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=0,
        description="Files and variants up to this size are kept in the page cache (memory, "
        "then Redis) and served from it; 0: none.",
    )
    media_upload_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Deadline of one file's upload to the media service."
    )
    rpc_timeout_seconds: float = Field(
        default=5.0, description="Deadline of every gRPC call made for a request."
    )
    ready_timeout_seconds: float = 1.0
    max_body_bytes: int = 1024 * 1024
    cors_origins: list[str] = Field(default_factory=list)
    hsts: bool = False
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies (comma-separated IPs, or *) whose X-Forwarded-For is trusted for "
        "the client address. Empty: none, the peer address is the client.",
    )
    auth_poll_seconds: float = Field(
        default=1.0, description="How often revocations and role changes are fetched."
    )
    auth_stale_after_seconds: float = Field(
        default=15.0,
        description="Signed-in requests get 503 when revocations could not be fetched this long.",
    )
    cookie_secure: bool = Field(
        default=True,
        description="Mark session cookies Secure (browsers send them over HTTPS "
        "and to localhost only).",
    )
    sign_in_url: str = Field(
        default="/auth/login?message=You%20have%20been%20logged%20out%20successfully",
        description="Where `GET /auth/logout` sends the browser.",
    )
    register_attempts_per_ip: int = Field(
        default=10, description="Registrations per client address per hour."
    )
    refresh_attempts_per_ip: int = Field(
        default=120, description="Token refreshes per client address per minute."
    )
