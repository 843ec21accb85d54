"""One way to run a service: `python -m heron_<name> [serve|migrate|<its own commands>]`.

A service declares a `ServiceSpec`: its name (an entry of `heron_common.registry`), its
settings class, its Alembic folder, its method policy and how to build it (its use cases and
servicer, on the database this module opened and migrated). `main(spec)` gives every service
the same entry point, logging, migrations (under an advisory lock whose id derives from the
name), token verification, health and reflection, drain on SIGTERM, and one `AsyncExitStack`
that closes what was opened, in reverse, however serving ends.

In each service: `server.py` assembles (the spec), `servicer.py` translates, `service.py`
decides, `repository.py` queries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import uvloop
from cms.auth.v1 import auth_pb2_grpc
from cms.plugins.v1 import plugins_pb2_grpc
from prometheus_client import REGISTRY

from heron_common import tracing
from heron_common.db import Database, create_engine, revisions
from heron_common.errors import DomainError
from heron_common.logging import configure_logging
from heron_common.outbox import OUTBOX_METRICS, Outbox, Relay
from heron_common.plugin_hooks import PluginHooks
from heron_common.registry import BY_NAME
from heron_common.rpc.client import create_channel
from heron_common.rpc.metrics import PoolCollector, serve_metrics
from heron_common.rpc.server import create_server, run_server
from heron_common.security.authz import MethodPolicy
from heron_common.security.identity import Authenticator, GrpcAuthSource
from heron_common.settings import ServiceSettings

logger = logging.getLogger("heron.service")

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


@dataclass
class Built:
    """A service made ready to serve by its spec's `build`."""

    register: Callable[[grpc.aio.Server], None]
    """Adds the service's servicer to the server."""
    authenticator: Authenticator
    """Verifies callers' tokens; started here, and the service is ready once it has synced."""
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    """Loops that run while the service serves (cancelled at shutdown)."""


@dataclass(frozen=True)
class Command(Generic[SettingsT]):
    """A command of a service's own beyond `serve` and `migrate` (e.g. auth's `create-user`)."""

    run: Callable[[SettingsT, argparse.Namespace], Coroutine[Any, Any, None]]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda _: None
    help: str = ""


@dataclass(frozen=True)
class ServiceSpec(Generic[SettingsT]):
    name: str
    settings: Callable[[], SettingsT]
    migrations: Path
    """The service's Alembic folder (with its `env.py`, see `migrations.run_alembic_env`)."""
    policy: Mapping[str, str]
    """gRPC method name → what a caller needs (`heron_common.security.authz`)."""
    build: Callable[[SettingsT, Database, bool, AsyncExitStack], Awaitable[Built]]
    """(settings, its migrated database, whether the store was created just now, the exit
    stack to push its own cleanups on) → the built service."""

    @property
    def grpc_service(self) -> str:
        return BY_NAME[self.name].grpc_service

    @property
    def version_table(self) -> str:
        return revisions.version_table(self.name)

    @property
    def advisory_lock_id(self) -> int:
        return advisory_lock_id(self.name)


def advisory_lock_id(name: str) -> int:
    """The PostgreSQL advisory lock its migrations run under: from the name, a positive int."""
    digest = hashlib.blake2b(f"heron-migrations:{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


async def migrate(
    spec: ServiceSpec[SettingsT], database: Database, *, child_url: str | None = None
) -> bool:
    """Bring the store to the newest revision; True when the store was created by this call.

    A store at head is left alone without importing Alembic. Otherwise the migrations run in
    this process, or, given the store's `child_url`, in a child process, so that a process
    that goes on to serve never imports Alembic (see heron_common.db.revisions)."""
    if await revisions.at_head(database, spec.migrations, spec.version_table):
        return False
    if child_url is None:
        from heron_common.db import migrations

        return await migrations.upgrade(
            database,
            script_location=spec.migrations,
            version_table=spec.version_table,
            advisory_lock_id=spec.advisory_lock_id,
        )
    return await revisions.upgrade_in_child(
        database,
        child_url,
        script_location=spec.migrations,
        table=spec.version_table,
        advisory_lock_id=spec.advisory_lock_id,
    )


async def open_database(
    spec: ServiceSpec[SettingsT],
    settings: SettingsT,
    stack: AsyncExitStack,
    *,
    migrate_in_process: bool = False,
) -> tuple[Database, bool]:
    """The service's database, migrated (and disposed of when `stack` closes); and whether the
    store was created just now."""
    url = settings.resolved_database_url(spec.name)
    database = Database(create_engine(url, pool_size=settings.db_pool_size))
    stack.push_async_callback(database.dispose)
    child_url = None if migrate_in_process else url
    return database, await migrate(spec, database, child_url=child_url)


def remote_authenticator(settings: ServiceSettings, stack: AsyncExitStack) -> Authenticator:
    """Verifies callers' tokens against the state the auth service publishes (for every
    service but auth itself)."""
    channel = create_channel(settings.auth_target)
    stack.push_async_callback(channel.close)
    return Authenticator(
        GrpcAuthSource(auth_pb2_grpc.AuthServiceStub(channel)),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        poll_seconds=settings.auth_poll_seconds,
    )


def remote_plugin_hooks(settings: ServiceSettings, stack: AsyncExitStack) -> PluginHooks:
    """The active plugins' hooks, fetched from the plugins service every `auth_poll_seconds`
    (run its `run` as a background loop), for a service whose writes fire hooks."""
    channel = create_channel(settings.plugins_target)
    stack.push_async_callback(channel.close)
    return PluginHooks(
        plugins_pb2_grpc.PluginsServiceStub(channel),
        settings.internal_secret,
        poll_seconds=settings.auth_poll_seconds,
        timeout=settings.peer_timeout_seconds,
    )


def plugin_outbox(
    source: str, database: Database, table: Any, hooks: PluginHooks
) -> tuple[Outbox, Relay]:
    """The service's outbox of after-events (kept only for events an active plugin listens
    to) and its relay to the plugins service (run its `run` as a background loop)."""
    outbox = Outbox(table, source, hooks)
    relay = Relay(
        database, outbox, hooks.stub, hooks.metadata, poll_seconds=1.0, timeout=hooks.timeout
    )
    OUTBOX_METRICS.relays.append(relay)
    return outbox, relay


def grpc_server(
    spec: ServiceSpec[SettingsT], built: Built, internal_secret: str = ""
) -> grpc.aio.Server:
    """The service's server: its method policy enforced on every call, its servicer added."""
    policy = MethodPolicy(built.authenticator, spec.grpc_service, spec.policy, internal_secret)
    server = create_server(policy=policy)
    built.register(server)
    return server


async def serve(spec: ServiceSpec[SettingsT], settings: SettingsT) -> None:
    """Build the service, serve it until SIGTERM/SIGINT, drain, and close everything."""
    async with AsyncExitStack() as stack:
        stack.callback(tracing.shutdown)  # closed last: what the others log is exported
        database, created = await open_database(spec, settings, stack)
        if settings.metrics_port:
            REGISTRY.register(PoolCollector(spec.name, database.engine))
            serve_metrics(settings.metrics_port, settings.grpc_host)
        built = await spec.build(settings, database, created, stack)
        await built.authenticator.start()
        stack.push_async_callback(built.authenticator.stop)
        for loop in built.background:
            task = asyncio.create_task(loop(), name=f"{spec.name}-background")
            stack.push_async_callback(_cancel, task)
        await run_server(
            grpc_server(spec, built, settings.internal_secret),
            host=settings.grpc_host,
            port=settings.grpc_port,
            service_names=[spec.grpc_service],
            grace_seconds=settings.shutdown_grace_seconds,
            drain_seconds=settings.shutdown_drain_seconds,
            ready=built.authenticator.wait_ready,
        )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _migrate_only(spec: ServiceSpec[SettingsT], settings: SettingsT) -> None:
    async with AsyncExitStack() as stack:
        await open_database(spec, settings, stack, migrate_in_process=True)


def main(
    spec: ServiceSpec[SettingsT],
    commands: Mapping[str, Command[SettingsT]] | None = None,
    argv: list[str] | None = None,
) -> None:
    """`python -m heron_<name> [serve|migrate|<commands>]`; `serve` when none is given."""
    commands = commands or {}
    parser = argparse.ArgumentParser(prog=f"python -m heron_{spec.name}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve gRPC until SIGTERM (the default)")
    sub.add_parser("migrate", help="apply the database migrations, then exit")
    for name, command in commands.items():
        command.arguments(sub.add_parser(name, help=command.help))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = spec.settings()
    configure_logging(spec.name, settings.log_level, settings.log_json)
    name = args.command or "serve"
    if name == "serve":
        tracing.configure_tracing(spec.name)
        work = serve(spec, settings)
    elif name == "migrate":
        work = _migrate_only(spec, settings)
    else:
        work = commands[name].run(settings, args)
    try:
        uvloop.run(work)
    except DomainError as exc:
        sys.exit(f"heron: {exc.message}")
