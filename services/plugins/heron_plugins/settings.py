"""Plugins service settings (env prefix `HERON_PLUGINS_`)."""

from __future__ import annotations

from heron_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class PluginsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_PLUGINS_", extra="ignore", populate_by_name=True
    )

    grpc_port: int = 50054
