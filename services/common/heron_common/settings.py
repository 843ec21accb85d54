"""Settings base shared by every Heron process (pydantic-settings, one env prefix per process)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HeronSettings(BaseSettings):
    """Fields every process has. Subclasses set `model_config` with their own `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="HERON_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where embedded stores live.")
    log_level: str = "INFO"
    log_json: bool = True


class ServiceSettings(HeronSettings):
    """A gRPC service with its own database."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/<service>.db.",
    )
    db_pool_size: int = 10
    shutdown_grace_seconds: float = 10.0

    def resolved_database_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"
