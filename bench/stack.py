"""Start Heron as in production (or embedded) plus the floor servers; tear all of it down."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from types import TracebackType

from heron_common.registry import SERVICES

from bench import plugins
from bench.database import (
    create_database,
    delete_redis_keys,
    drop_database,
    redis_reachable,
    with_database,
)
from bench.machine import REPO_ROOT, Pinning
from bench.options import Options
from bench.processes import Server, free_port, wait_http_ok

# What the benchmark sets for a service beyond what every service gets (its own seed data).
UPLOAD_LIMIT = str(256 * 1024 * 1024)  # room for the 200 MB upload scenario
EXTRA_ENV: dict[str, dict[str, str]] = {
    "content": {"HERON_CONTENT_SEED_DEMO": "false"},
    "media": {"HERON_MEDIA_MAX_FILE_BYTES": UPLOAD_LIMIT},
}


def _base_env() -> dict[str, str]:
    # A developer's own HERON_* settings must not leak into the measured processes.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Stack:
    """Every process and database of one run; `close()` undoes all of it, in reverse."""

    def __init__(self, options: Options, pinning: Pinning, workdir: Path) -> None:
        self.options = options
        self.pinning = pinning
        self.workdir = workdir
        self.heron: list[Server] = []  # the services, then the run's own gateway
        self.services: list[Server] = []
        # More gateways in front of the same services, by `Via` (see bench.scenarios).
        self.gateways: dict[str, Server] = {}
        self.gateway_urls: dict[str, str] = {}
        self.unavailable: dict[str, str] = {}  # a gateway that could not be started: why
        self.floors: list[Server] = []
        self.asgi_floor: list[Server] = []
        self.asgi_floor_2w: list[Server] = []
        self.echo_floor: list[Server] = []
        self.databases: list[str] = []
        self.gateway_url = ""
        self.asgi_floor_url = ""
        self.asgi_floor_2w_url = ""
        self.echo_floor_url = ""
        self.content_database_url = ""  # for bulk seeding and ANALYZE
        self.database_urls: list[str] = []  # every service's (production mode), for ANALYZE
        self.description = ""
        # The first admin, created by the auth service on its empty store at start.
        self.admin_email = f"bench-admin-{secrets.token_hex(4)}@example.com"
        self.admin_password = f"bench-{secrets.token_urlsafe(18)}"
        self.redis_prefix = ""  # unique per run (production mode): no key of another run

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _server(
        self, name: str, module: str, args: list[str], env: dict[str, str], pinned: bool = True
    ) -> Server:
        prefix = self.pinning.server_prefix() if pinned else []
        argv = [*prefix, sys.executable, "-m", module, *args]
        server = Server(name, argv, env, self.workdir / f"{name}.log", REPO_ROOT)
        server.start()
        return server

    def start_heron(self) -> None:
        """Each service, then the gateway; returns once the gateway's /ready says 200."""
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        common = {
            **_base_env(),
            "HERON_DATA_DIR": str(data_dir),
            # The bench's plugin (a before hook), found by the plugins service, off until the
            # scenario that measures it activates it.
            "PYTHONPATH": str(plugins.install(self.workdir / "site")),
            # The JSON access log would otherwise cost more than some of what is measured.
            "HERON_LOG_LEVEL": "WARNING",
            "HERON_LOG_JSON": "true",
            # The gateway vouches for client addresses; the login scenario signs in hundreds
            # of times from one of them.
            "HERON_INTERNAL_SECRET": secrets.token_urlsafe(24),
            "HERON_AUTH_LOGIN_ATTEMPTS_PER_IP": "100000000",
            # The webhook scenario's receiver runs on this machine.
            "HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
        }
        if self.options.embedded:
            self.description = "embedded: SQLite, no Redis, one process per service"
        else:
            common["HERON_REDIS_URL"] = self.options.redis_url
            # Rate-limit counters (and any cache) of earlier runs must not be seen.
            self.redis_prefix = f"heron-bench-{secrets.token_hex(4)}"
            common["HERON_REDIS_PREFIX"] = self.redis_prefix
            redis = "Redis" if redis_reachable(self.options.redis_url) else "Redis unreachable"
            self.description = f"production: PostgreSQL, {redis}, one process per service"
            if redis != "Redis":
                print(
                    f"bench: warning: no Redis at {self.options.redis_url} "
                    "(each process falls back to its own memory)",
                    file=sys.stderr,
                )
        gateway_env = {
            **common,
            "HERON_GATEWAY_HOST": "127.0.0.1",
            "HERON_GATEWAY_PORT": str(free_port()),
            "HERON_GATEWAY_WORKERS": str(self.options.workers),
            "HERON_GATEWAY_MEDIA_MAX_REQUEST_BYTES": UPLOAD_LIMIT,
        }
        # Every address is known before the first service starts: services call each other
        # (content and media ask each other about files, all of them the plugins service).
        ports = {service.name: free_port() for service in SERVICES}
        for service in SERVICES:
            target = f"127.0.0.1:{ports[service.name]}"
            gateway_env[service.target_variable] = target
            if service.target_for_all:
                common[service.target_variable] = target
        for service in SERVICES:
            port = ports[service.name]
            env = {**common, **EXTRA_ENV.get(service.name, {}), service.port_variable: str(port)}
            if service.name == "auth":
                env["HERON_ADMIN_EMAIL"] = self.admin_email
                env["HERON_ADMIN_PASSWORD"] = self.admin_password
            if self.options.embedded:
                env[service.database_variable] = ""  # SQLite at <data dir>/<service>.db
                url = f"sqlite:///{data_dir / f'{service.name}.db'}"
            else:
                name = create_database(self.options.pg_admin_url, service.name)
                self.databases.append(name)
                url = env[service.database_variable] = with_database(
                    self.options.pg_admin_url, name
                )
                self.database_urls.append(url)
            if service.name == "content":
                self.content_database_url = url
            self.services.append(self._server(service.name, service.package, [], env))
        gateway = self.gateways["gateway"] = self._server(
            "gateway", "heron_gateway", [], gateway_env
        )
        self.heron = [*self.services, gateway]
        self.gateway_url = self.gateway_urls["gateway"] = (
            f"http://127.0.0.1:{gateway_env['HERON_GATEWAY_PORT']}"
        )
        wait_http_ok(f"{self.gateway_url}/ready", self.heron, timeout=90)
        self._start_gateway("tier-off", gateway_env, {"HERON_CACHE_ENABLED": "false"})
        if self.options.embedded:
            # Several workers share their caches' invalidations through Redis only.
            self.unavailable["two-workers"] = "needs Redis (production mode)"
        else:
            self._start_gateway(
                "two-workers", gateway_env, {"HERON_GATEWAY_WORKERS": "2"}, pinned=False
            )

    def _start_gateway(
        self, via: str, base: dict[str, str], changes: dict[str, str], pinned: bool = True
    ) -> None:
        """One more gateway in front of the same services, on its own port."""
        port = free_port()
        env = {**base, **changes, "HERON_GATEWAY_PORT": str(port)}
        server = self.gateways[via] = self._server(
            f"gateway-{via}", "heron_gateway", [], env, pinned=pinned
        )
        self.gateway_urls[via] = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{self.gateway_urls[via]}/ready", [*self.services, server], timeout=90)

    def servers_for(self, via: str) -> list[Server]:
        """What answers a scenario sent to gateway `via`: the services and that gateway."""
        return [*self.services, self.gateways[via]]

    def start_floors(self) -> None:
        """The raw ASGI floor, and the echo gRPC server with its FastAPI hop in front."""
        env = _base_env()
        workers = ["--workers", str(self.options.workers)]
        asgi_port, echo_port, hop_port = free_port(), free_port(), free_port()
        asgi = self._server(
            "floor-asgi", "bench.floors.asgi", ["--port", str(asgi_port), *workers], env
        )
        echo = self._server("floor-echo-grpc", "bench.floors.echo_server", [str(echo_port)], env)
        hop = self._server(
            "floor-echo-hop",
            "bench.floors.echo_gateway",
            ["--port", str(hop_port), "--target", f"127.0.0.1:{echo_port}", *workers],
            env,
        )
        self.floors += [asgi, echo, hop]
        self.asgi_floor, self.echo_floor = [asgi], [hop, echo]
        self.asgi_floor_url = f"http://127.0.0.1:{asgi_port}"
        self.echo_floor_url = f"http://127.0.0.1:{hop_port}"
        wait_http_ok(f"{self.asgi_floor_url}/bytes/2", [asgi])
        wait_http_ok(f"{self.echo_floor_url}/sized/2", [echo, hop])
        if "two-workers" in self.gateways:
            port = free_port()
            args = ["--port", str(port), "--workers", "2"]
            floor = self._server("floor-asgi-2w", "bench.floors.asgi", args, env, pinned=False)
            self.floors.append(floor)
            self.asgi_floor_2w = [floor]
            self.asgi_floor_2w_url = f"http://127.0.0.1:{port}"
            wait_http_ok(f"{self.asgi_floor_2w_url}/bytes/2", [floor])

    def all_servers(self) -> list[Server]:
        """In start order: services, gateways, floors."""
        return [*self.services, *self.gateways.values(), *self.floors]

    def heron_servers(self) -> list[Server]:
        return [*self.services, *self.gateways.values()]

    def check_alive(self) -> None:
        for server in self.all_servers():
            if not server.alive():
                raise server.failure("exited during the run")

    def rss(self, servers: list[Server] | None = None) -> dict[str, dict[str, int]]:
        """RSS of each server (with its workers) right now, by name (default: every one)."""
        return {s.name: s.rss() for s in (self.all_servers() if servers is None else servers)}

    def close(self) -> None:
        # Gateways before services (reverse start order), floors too; then the databases.
        for server in reversed(self.all_servers()):
            server.stop()
        self.heron.clear()
        self.services.clear()
        self.gateways.clear()
        self.floors.clear()
        for name in self.databases:
            try:
                drop_database(self.options.pg_admin_url, name)
            except Exception as exc:
                print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)
        self.databases.clear()
        if self.redis_prefix:
            try:
                delete_redis_keys(self.options.redis_url, self.redis_prefix)
            except Exception as exc:
                print(f"bench: could not delete the run's Redis keys: {exc}", file=sys.stderr)
            self.redis_prefix = ""
