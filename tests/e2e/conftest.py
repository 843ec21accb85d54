"""End-to-end fixtures: the gateway and the services as real processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


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


@dataclass
class Stack:
    """A running gateway + content service, and an HTTP client pointed at the gateway."""

    base_url: str
    content: Service
    gateway: Service
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=15)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for service in (self.content, self.gateway):
                if service.popen is not None and service.popen.poll() is not None:
                    raise RuntimeError(f"{service.name} exited:\n{service.log()[-3000:]}")
            try:
                reply = self.client.get("/ready")
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"stack not ready: {last}\n{self.content.log()[-2000:]}")

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.content.stop()


def start_stack(tmp: Path, database_url: str = "", seed: bool = True) -> Stack:
    content_port, gateway_port = free_port(), free_port()
    common = {"HERON_DATA_DIR": str(tmp), "HERON_LOG_LEVEL": "INFO"}
    content = Service(
        "content",
        [sys.executable, "-m", "heron_content"],
        {
            **common,
            "HERON_CONTENT_GRPC_PORT": str(content_port),
            "HERON_CONTENT_DATABASE_URL": database_url,
            "HERON_CONTENT_SEED_DEMO": "true" if seed else "false",
        },
        tmp / "content.log",
    )
    gateway = Service(
        "gateway",
        [sys.executable, "-m", "heron_gateway"],
        {
            **common,
            "HERON_GATEWAY_PORT": str(gateway_port),
            "HERON_GATEWAY_CONTENT_TARGET": f"127.0.0.1:{content_port}",
            "HERON_GATEWAY_RPC_TIMEOUT_SECONDS": "2",
        },
        tmp / "gateway.log",
    )
    content.start()
    gateway.start()
    stack = Stack(f"http://127.0.0.1:{gateway_port}", content, gateway)
    try:
        stack.wait_ready()
    except Exception:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack on each embedded and production database, shared by the e2e tests."""
    tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    running = start_stack(tmp, url)
    yield running
    running.stop()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A private stack (SQLite) for tests that kill or stop its processes."""
    running = start_stack(tmp_path, seed=False)
    yield running
    running.stop()
