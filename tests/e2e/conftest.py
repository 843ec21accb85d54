"""End-to-end fixtures: the gateway and the services as real processes on free ports."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from heron_common.registry import SERVICES

from tests.conftest import free_port, throwaway_database


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


ADMIN_PASSWORD = "canary-Admin-Pw-5c1e9d"
"""The first admin's password: a canary that must never appear in a log or an error body."""
USER_PASSWORD = "user-Pw-for-tests-8a2f"
INTERNAL_SECRET = "internal-secret-for-tests-3b7d0c"
"""Shared by a test stack's processes: the auth service believes the gateway's client address."""


@dataclass
class Stack:
    """A running auth service, content service and gateway, with HTTP clients for it.

    `client` is signed in as the first admin; `anon` sends no credentials.
    """

    base_url: str
    backends: dict[str, Service]
    """Each service of `heron_common.registry.SERVICES`, by name."""
    gateway: Service
    admin_email: str
    anon: httpx.Client = field(init=False)
    client: httpx.Client = field(init=False)
    _clients: list[httpx.Client] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anon = httpx.Client(base_url=self.base_url, timeout=15)
        self.client = httpx.Client(base_url=self.base_url, timeout=15)

    @property
    def services(self) -> tuple[Service, ...]:
        return (*self.backends.values(), self.gateway)

    @property
    def auth(self) -> Service:
        return self.backends["auth"]

    @property
    def content(self) -> Service:
        return self.backends["content"]

    @property
    def media(self) -> Service:
        return self.backends["media"]

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the gateway's /ready says 200: six processes starting beside the other test
        process's (schemathesis, a stack of its own) may need more than half a minute."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for service in self.services:
                if service.popen is not None and service.popen.poll() is not None:
                    raise RuntimeError(f"{service.name} exited:\n{service.log()[-3000:]}")
            try:
                reply = self.anon.get("/ready")
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"stack not ready: {last}\n{self.auth.log()[-2000:]}")

    def login(self, email: str, password: str) -> dict[str, Any]:
        reply = self.anon.post("/auth/login", json={"email": email, "password": password})
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def sign_in_admin(self) -> None:
        token = self.login(self.admin_email, ADMIN_PASSWORD)["token"]
        self.client.headers["authorization"] = f"Bearer {token}"

    def user(self, role: str, password: str = USER_PASSWORD) -> User:
        """A new account with `role`, created by the admin, and a client signed in as it."""
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        reply = self.client.post(
            "/api/users", json={"email": email, "password": password, "role": role}
        )
        assert reply.status_code == 201, reply.text
        session = self.login(email, password)
        client = httpx.Client(
            base_url=self.base_url,
            timeout=15,
            headers={"authorization": f"Bearer {session['token']}"},
        )
        self._clients.append(client)
        return User(reply.json()["data"]["id"], email, password, client, session)

    def logs(self) -> str:
        return "\n".join(service.log() for service in self.services)

    def stop(self) -> None:
        for client in (self.anon, self.client, *self._clients):
            client.close()
        self.gateway.stop()
        for backend in reversed(self.backends.values()):
            backend.stop()


@dataclass
class User:
    id: str
    email: str
    password: str
    client: httpx.Client
    session: dict[str, Any]


def start_stack(
    tmp: Path,
    database_url: str = "",
    seed: bool = True,
    auth_database_url: str = "",
    extra_env: dict[str, str] | None = None,
    admin_email: str = "",
    name: str = "",
    media_database_url: str = "",
    plugins_database_url: str = "",
) -> Stack:
    """Start auth, content and gateway; `name` prefixes the log files (several stacks may
    share one data directory, and so one store); `admin_email` signs in to an existing one."""
    ports = {service.name: free_port() for service in SERVICES}
    gateway_port = free_port()
    admin_email = admin_email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
    common = {
        "HERON_DATA_DIR": str(tmp),
        "HERON_LOG_LEVEL": "INFO",
        # Stacks sharing the test Redis never see each other's keys (unless they ask to).
        "HERON_REDIS_PREFIX": f"heron-test-{uuid.uuid4().hex[:8]}",
        # The tests sign in many times from one address.
        "HERON_AUTH_LOGIN_ATTEMPTS_PER_IP": "100000",
        "HERON_INTERNAL_SECRET": INTERNAL_SECRET,
        # Two test files run at once on two cores: under that load one call may stall for
        # seconds. test_resilience sets its own short deadline to see a hung service.
        "HERON_GATEWAY_RPC_TIMEOUT_SECONDS": "10",
        **(extra_env or {}),
    }
    gateway_env = {"HERON_GATEWAY_PORT": str(gateway_port)}
    for service in SERVICES:
        target = f"127.0.0.1:{ports[service.name]}"
        (common if service.target_for_all else gateway_env)[service.target_variable] = target
    own_env = {
        "auth": {
            "HERON_AUTH_DATABASE_URL": auth_database_url,
            "HERON_ADMIN_EMAIL": admin_email,
            "HERON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
        "content": {
            "HERON_CONTENT_DATABASE_URL": database_url,
            "HERON_CONTENT_SEED_DEMO": "true" if seed else "false",
        },
        "media": {"HERON_MEDIA_DATABASE_URL": media_database_url},
        "plugins": {"HERON_PLUGINS_DATABASE_URL": plugins_database_url},
    }
    backends = {
        service.name: Service(
            service.name,
            [sys.executable, "-m", service.package],
            {
                **common,
                service.port_variable: str(ports[service.name]),
                **own_env.get(service.name, {}),
            },
            tmp / f"{name}{service.name}.log",
        )
        for service in SERVICES
    }
    gateway = Service(
        "gateway",
        [sys.executable, "-m", "heron_gateway"],
        {**common, **gateway_env},
        tmp / f"{name}gateway.log",
    )
    for process in (*backends.values(), gateway):
        process.start()
    stack = Stack(f"http://127.0.0.1:{gateway_port}", backends, gateway, admin_email)
    try:
        stack.wait_ready()
        stack.sign_in_admin()
    except Exception:
        stack.stop()
        raise
    return stack


SEARCH_WINDOW = 5
"""The shared stacks score a ranked search's 5 newest matches, so a test can reach past them."""
_SHARED_ENV = {
    "HERON_CONTENT_SEARCH_RANK_WINDOW": str(SEARCH_WINDOW),
}


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack on each embedded and production database, shared by the e2e tests."""
    tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server_url")
        with (
            throwaway_database(server) as content_url,
            throwaway_database(server) as auth_url,
            throwaway_database(server) as media_url,
        ):
            running = start_stack(
                tmp,
                content_url,
                auth_database_url=auth_url,
                media_database_url=media_url,
                extra_env=_SHARED_ENV,
            )
            yield running
            running.stop()
    else:
        running = start_stack(tmp, extra_env=_SHARED_ENV)
        yield running
        running.stop()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A private stack (SQLite) for tests that kill or stop its processes."""
    running = start_stack(tmp_path, seed=False)
    yield running
    running.stop()


def content_sql(stack: Stack, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement on the content service's database, behind the service's back
    (`?` placeholders, on SQLite and PostgreSQL alike); its rows."""
    content = stack.backends["content"]
    url = content.env.get("HERON_CONTENT_DATABASE_URL", "")
    if not url:
        with sqlite3.connect(Path(content.env["HERON_DATA_DIR"]) / "content.db") as db:
            return [tuple(r) for r in db.execute(statement, args).fetchall()]
    numbered = statement
    for n in range(1, len(args) + 1):
        numbered = numbered.replace("?", f"${n}", 1)

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [tuple(r) for r in await conn.fetch(numbered, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's S3 server (its own process), for the module's tests."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def s3_env(url: str, bucket: str) -> dict[str, str]:
    """The media service's settings for the bucket `bucket` at the S3 endpoint `url`."""
    return {
        "HERON_MEDIA_STORAGE": "s3",
        "HERON_MEDIA_S3_BUCKET": bucket,
        "HERON_MEDIA_S3_ENDPOINT_URL": url,
        "HERON_MEDIA_S3_REGION": "us-east-1",
        "HERON_MEDIA_S3_ACCESS_KEY_ID": "test",
        "HERON_MEDIA_S3_SECRET_ACCESS_KEY": "test",
        "HERON_MEDIA_S3_PATH_STYLE": "true",
    }
