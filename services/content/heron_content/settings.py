"""Content service settings (env prefix `HERON_CONTENT_`)."""

from __future__ import annotations

from pathlib import Path

from heron_common.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class ContentSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_CONTENT_", extra="ignore", populate_by_name=True
    )

    grpc_port: int = 50052
    seed_demo: bool = True
    revisions_per_item: int = Field(
        default=50, ge=1, le=10_000, description="Revisions kept per item (the oldest go)."
    )
    scheduler_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the scheduler looks for due scheduled publishing.",
    )
    collections_dir: Path | None = Field(
        default=None,
        description="A directory of collection definitions (JSON or YAML), applied at start.",
    )
    search_rank_window: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="A ranked search scores this many of its newest matches; older ones follow.",
    )
    scheduler_batch: int = Field(
        default=50, ge=1, le=1000, description="Scheduled changes the scheduler takes at once."
    )
