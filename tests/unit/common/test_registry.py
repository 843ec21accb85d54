"""The service registry says true things about every service: its package serves its gRPC
service, its variables are read by its settings, and the gateway has a target for it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from heron_common.registry import SERVICES, Service
from heron_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[3]


def test_every_service_folder_is_registered_once() -> None:
    names = [s.name for s in SERVICES]
    assert len(names) == len(set(names))
    with_code = {
        d.name
        for d in (ROOT / "services").iterdir()
        if (d / f"heron_{d.name}" / "__main__.py").exists()
    }
    assert set(names) == with_code


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_a_registered_service_is_what_its_entry_says(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    importlib.import_module(f"{service.package}.servicer")  # registers its descriptor
    descriptor = descriptor_pool.Default().FindServiceByName(service.grpc_service)
    reads = service.retry_safe_methods()
    assert reads and set(reads) <= {m.name for m in descriptor.methods}
    assert all(name.startswith(("Get", "List")) for name in reads)

    settings_class = importlib.import_module(f"{service.package}.settings")
    (owner,) = [
        cls
        for cls in vars(settings_class).values()
        if isinstance(cls, type) and cls.__module__ == settings_class.__name__
    ]
    for variable in os.environ:
        if variable.startswith("HERON_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv(service.port_variable, "4321")
    monkeypatch.setenv(service.database_variable, "sqlite:///elsewhere.db")
    settings = owner()
    assert settings.grpc_port == 4321
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert owner.model_fields["grpc_port"].default == service.default_port

    monkeypatch.setenv(service.target_variable, "10.0.0.9:4321")
    assert getattr(GatewaySettings(), service.target_setting) == "10.0.0.9:4321"
