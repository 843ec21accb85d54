"""Auth service settings (env prefix `HERON_AUTH_`)."""

from __future__ import annotations

from heron_common.settings import ServiceSettings
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_AUTH_", extra="ignore", populate_by_name=True
    )

    grpc_port: int = 50051
    access_token_ttl_seconds: int = Field(
        default=600, ge=30, le=3600, description="Lifetime of an access token (JWT)."
    )
    refresh_token_ttl_seconds: int = Field(
        default=14 * 86400, description="A refresh token unused this long expires."
    )
    session_max_seconds: int = Field(
        default=30 * 86400,
        description="Absolute lifetime of a signed-in session: refreshing never extends it.",
    )
    registration_enabled: bool = Field(
        default=False, description="Whether `POST /auth/register` creates accounts."
    )
    registration_role: str = Field(
        default="viewer", description="The role self-registered accounts get (never admin)."
    )
    password_min_length: int = Field(default=10, ge=8)
    login_attempts_per_ip: int = Field(
        default=100, ge=1, description="Sign-in attempts per client address per window."
    )
    login_failures_per_account_and_ip: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins per account from one address per window before 429 "
        "(twice as many per 4 windows, 4 times per 96: the lockout grows).",
    )
    login_failures_per_account: int = Field(
        default=100,
        ge=1,
        description="Failed sign-ins per account from all addresses per window; over it, only "
        "addresses the account signed in from before are let through.",
    )
    login_window_seconds: int = Field(default=900, ge=1)
    # OWASP's recommended argon2id setting (46 MiB, 1 pass, 1 lane), about 45 ms per hash on
    # one core; RFC 9106's 64 MiB x 3 passes x 4 lanes costs ~115-150 ms there. Raise these on
    # machines with cores to spare. Hashes made with other parameters are upgraded on the next
    # successful sign-in.
    argon2_time_cost: int = 1
    argon2_memory_kib: int = 47104
    argon2_parallelism: int = 1
    auth_poll_seconds: float = Field(
        default=1.0,
        validation_alias=AliasChoices("HERON_AUTH_STATE_POLL_SECONDS"),
        description="How often the auth service reads revocations and role changes from its own "
        "store.",
    )
    admin_email: str = Field(default="", validation_alias=AliasChoices("HERON_ADMIN_EMAIL"))
    admin_username: str = Field(
        default="admin",
        validation_alias=AliasChoices("HERON_ADMIN_USERNAME"),
        description="The username of the first admin.",
    )
    admin_password: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("HERON_ADMIN_PASSWORD"),
    )
