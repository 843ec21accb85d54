"""Start Heron as in production (or embedded) plus the floor servers; tear all of it down."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench.database import create_database, drop_database, redis_reachable, with_database
from bench.machine import REPO_ROOT, Pinning
from bench.options import Options
from bench.processes import Server, free_port, wait_http_ok


@dataclass(frozen=True)
class Service:
    """A Heron gRPC service process and the gateway setting that points at it."""

    name: str
    module: str
    port_env: str
    database_env: str
    gateway_target_env: str
    extra_env: dict[str, str] = field(default_factory=dict)


# Every service Heron runs as its own process; add auth and media here when they exist.
SERVICES = (
    Service(
        name="content",
        module="heron_content",
        port_env="HERON_CONTENT_GRPC_PORT",
        database_env="HERON_CONTENT_DATABASE_URL",
        gateway_target_env="HERON_GATEWAY_CONTENT_TARGET",
        extra_env={"HERON_CONTENT_SEED_DEMO": "false"},
    ),
)


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
        self.heron: list[Server] = []
        self.floors: list[Server] = []
        self.asgi_floor: list[Server] = []
        self.echo_floor: list[Server] = []
        self.databases: list[str] = []
        self.gateway_url = ""
        self.asgi_floor_url = ""
        self.echo_floor_url = ""
        self.content_database_url = ""  # for bulk seeding and ANALYZE
        self.description = ""

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _server(self, name: str, module: str, args: list[str], env: dict[str, str]) -> Server:
        argv = [*self.pinning.server_prefix(), sys.executable, "-m", module, *args]
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
            # The JSON access log would otherwise cost more than some of what is measured.
            "HERON_LOG_LEVEL": "WARNING",
            "HERON_LOG_JSON": "true",
        }
        if self.options.embedded:
            self.description = "embedded: SQLite, no Redis, one process per service"
        else:
            common["HERON_REDIS_URL"] = self.options.redis_url
            redis = "Redis" if redis_reachable(self.options.redis_url) else "Redis unreachable"
            self.description = f"production: PostgreSQL, {redis}, one process per service"
            if redis != "Redis":
                print(
                    f"bench: warning: no Redis at {self.options.redis_url} (unused so far)",
                    file=sys.stderr,
                )
        gateway_env = {
            **common,
            "HERON_GATEWAY_HOST": "127.0.0.1",
            "HERON_GATEWAY_PORT": str(free_port()),
            "HERON_GATEWAY_WORKERS": str(self.options.workers),
        }
        for service in SERVICES:
            port = free_port()
            env = {**common, **service.extra_env, service.port_env: str(port)}
            if self.options.embedded:
                env[service.database_env] = ""  # SQLite at <data dir>/<service>.db
                url = f"sqlite:///{data_dir / f'{service.name}.db'}"
            else:
                name = create_database(self.options.pg_admin_url, service.name)
                self.databases.append(name)
                url = env[service.database_env] = with_database(self.options.pg_admin_url, name)
            if service.name == "content":
                self.content_database_url = url
            self.heron.append(self._server(service.name, service.module, [], env))
            gateway_env[service.gateway_target_env] = f"127.0.0.1:{port}"
        self.heron.append(self._server("gateway", "heron_gateway", [], gateway_env))
        self.gateway_url = f"http://127.0.0.1:{gateway_env['HERON_GATEWAY_PORT']}"
        wait_http_ok(f"{self.gateway_url}/ready", self.heron, timeout=90)

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

    def check_alive(self) -> None:
        for server in [*self.heron, *self.floors]:
            if not server.alive():
                raise server.failure("exited during the run")

    def rss(self) -> dict[str, dict[str, int]]:
        """RSS of every server (with its workers) right now, by name."""
        out: dict[str, dict[str, int]] = {}
        for server in [*self.heron, *self.floors]:
            out[server.name] = server.rss()
        return out

    def close(self) -> None:
        # Gateway before services (reverse start order), floors too; then the databases.
        for server in reversed([*self.heron, *self.floors]):
            server.stop()
        self.heron.clear()
        self.floors.clear()
        for name in self.databases:
            try:
                drop_database(self.options.pg_admin_url, name)
            except Exception as exc:
                print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)
        self.databases.clear()
