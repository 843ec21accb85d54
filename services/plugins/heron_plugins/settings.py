"""Plugins service settings (env prefix `HERON_PLUGINS_`)."""

from __future__ import annotations

from heron_common.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class PluginsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_PLUGINS_", extra="ignore", populate_by_name=True
    )

    grpc_port: int = 50054
    webhook_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (names, addresses or CIDR ranges, as a JSON list) that webhook "
        "endpoints may point at although they are loopback, private, link-local or metadata "
        'addresses, e.g. ["127.0.0.0/8"]; none by default.',
    )
