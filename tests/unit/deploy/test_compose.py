"""deploy/compose: valid against the Compose Specification, every reference resolves, every
variable is documented, and every setting each Heron process reads is set for it (and nothing
a process does not read): a new service or setting that is not deployed fails here."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron_common.registry import SERVICES
from heron_common.settings import HeronSettings
from pydantic_settings import BaseSettings

from tests.unit.test_readme import environment_names

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "compose" / ".env.example"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
# Read by the image's health probe (heron_common.probe), not by a settings class.
PROBE = "HERON_PROBE"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def settings_class(package: str) -> type[BaseSettings]:
    module = importlib.import_module(f"{package}.settings")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, HeronSettings)
        and value.__module__ == module.__name__
    ]
    assert len(found) == 1, (package, found)
    return found[0]


def variables(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (each field's HERON_ name, as the
    README's configuration tables name it)."""
    names = set()
    for field, info in cls.model_fields.items():
        read = sorted(
            (n.upper() for n in environment_names(cls, field, info)),
            key=lambda n: not n.startswith("HERON_"),
        )
        names.add(read[0])
    return names


COMPONENTS = {"gateway": "heron_gateway", **{s.name: s.package for s in SERVICES}}


def test_the_file_follows_the_compose_specification() -> None:
    checked = subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_reference_resolves(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes, networks = set(compose["volumes"]), set(compose["networks"])
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), (name, source)
            else:
                assert source in volumes, (name, source)
        attached = service.get("networks", ["default"])
        for network in attached:
            assert network in networks, (name, network)


def test_only_traefik_is_published_and_secrets_are_required(compose: dict[str, Any]) -> None:
    published = [name for name, s in compose["services"].items() if s.get("ports")]
    assert published == ["traefik"]
    text = COMPOSE.read_text()
    for secret in ("HERON_INTERNAL_SECRET", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), secret
    assert compose["networks"]["backend"].get("internal") is True
    # The gateway believes forwarded headers from traefik's address only.
    traefik_ip = compose["services"]["traefik"]["networks"]["edge"]["ipv4_address"]
    gateway = compose["services"]["gateway"]["environment"]
    assert gateway["HERON_GATEWAY_FORWARDED_ALLOW_IPS"] == traefik_ip


def test_every_variable_is_documented_in_the_example() -> None:
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used - documented == set(), "missing from .env.example"
    assert documented - used == set(), "documented but never used"


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_each_process_gets_every_setting_it_reads_and_nothing_else(
    compose: dict[str, Any], component: str
) -> None:
    service = compose["services"].get(component)
    assert service is not None, f"{component} is not deployed by compose"
    assert COMPONENTS[component] in " ".join(service["command"])
    wanted = variables(settings_class(COMPONENTS[component]))
    given = {name for name in service["environment"] if name.startswith("HERON_")}
    assert wanted - given == set(), "settings the process reads that compose does not set"
    assert given - wanted - {PROBE} == set(), "settings compose sets that the process never reads"
    assert service["healthcheck"]["test"][-1] == "heron_common.probe"
    assert "condition" in next(iter(service["depends_on"].values()))
    assert service["restart"] == "unless-stopped" and service["read_only"] is True
    assert service["deploy"]["resources"]["limits"]["memory"]


def test_migrations_run_first_for_every_database(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    for service in SERVICES:
        assert service.database_variable in migrate["environment"], service.name
        assert compose["services"][service.name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    created = compose["services"]["postgres"]["environment"]["HERON_DATABASES"].split()
    assert created == [f"heron_{s.name}" for s in SERVICES]


def test_traefik_takes_the_largest_body_the_gateway_takes(compose: dict[str, Any]) -> None:
    dynamic = yaml.safe_load((COMPOSE.parent / "traefik" / "dynamic.yaml").read_text())
    limit = dynamic["http"]["middlewares"]["body-limit"]["buffering"]["maxRequestBodyBytes"]
    gateway = compose["services"]["gateway"]["environment"]
    assert str(limit) in gateway["HERON_GATEWAY_MEDIA_MAX_REQUEST_BYTES"]
    router = dynamic["http"]["routers"]["heron"]
    assert router["service"] == "gateway"
    assert set(router["middlewares"]) == {"body-limit", "security-headers"}
    servers = dynamic["http"]["services"]["gateway"]["loadBalancer"]
    assert servers["servers"] == [{"url": "http://gateway:8000"}]
    assert servers["healthCheck"]["path"] == "/ready"
