"""Every Heron service that runs as its own gRPC process, in one list.

The gateway's upstreams and `/ready`, `heron up` and `heron migrate`, the benchmark's stack and
the test fixtures all iterate over `SERVICES`: adding a service is adding its entry here (and
its own folder, and its routes), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pool

# The read methods: answering one twice changes nothing, so a failed attempt may be retried.
RETRY_SAFE_PREFIXES = ("Get", "List")


@dataclass(frozen=True)
class Service:
    """One service: how to start it, where it listens, and how the others find it."""

    name: str
    """`auth`, `content`: its settings prefix is `HERON_<NAME>_`, its store `<name>.db`."""
    package: str
    """The Python package; `python -m <package>` serves it, `... migrate` migrates it."""
    grpc_service: str
    """The full name of its gRPC service, as in its health checks and reflection."""
    default_port: int
    target_variable: str
    """Where the gateway (and, with `target_for_all`, every process) finds it."""
    target_setting: str
    """The settings field that variable fills (on the gateway's settings)."""
    target_for_all: bool = False
    """Whether every process needs it (the auth service: every service verifies tokens; the
    content and media services ask each other about the files items use)."""

    @property
    def port_variable(self) -> str:
        return f"HERON_{self.name.upper()}_GRPC_PORT"

    @property
    def database_variable(self) -> str:
        return f"HERON_{self.name.upper()}_DATABASE_URL"

    def retry_safe_methods(self) -> tuple[str, ...]:
        """Its methods named `Get*` or `List*` (the generated module must be imported)."""
        service = descriptor_pool.Default().FindServiceByName(self.grpc_service)
        return tuple(m.name for m in service.methods if m.name.startswith(RETRY_SAFE_PREFIXES))


# In start order: every other service verifies tokens against the auth service.
SERVICES: tuple[Service, ...] = (
    Service(
        name="auth",
        package="heron_auth",
        grpc_service="cms.auth.v1.AuthService",
        default_port=50051,
        target_variable="HERON_AUTH_TARGET",
        target_setting="auth_target",
        target_for_all=True,
    ),
    Service(
        name="content",
        package="heron_content",
        grpc_service="cms.content.v1.ContentService",
        default_port=50052,
        target_variable="HERON_CONTENT_TARGET",
        target_setting="content_target",
        target_for_all=True,
    ),
    Service(
        name="media",
        package="heron_media",
        grpc_service="cms.media.v1.MediaService",
        default_port=50053,
        target_variable="HERON_MEDIA_TARGET",
        target_setting="media_target",
        target_for_all=True,
    ),
    Service(
        name="plugins",
        package="heron_plugins",
        grpc_service="cms.plugins.v1.PluginsService",
        default_port=50054,
        target_variable="HERON_PLUGINS_TARGET",
        target_setting="plugins_target",
        target_for_all=True,
    ),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
