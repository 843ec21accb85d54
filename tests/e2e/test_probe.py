"""The image's health probe against real processes: each service's gRPC health and the
gateway's HTTP health, as a container runtime would run it."""

from __future__ import annotations

import subprocess
import sys

from heron_common.registry import SERVICES

from tests.e2e.conftest import Stack


def _probe(target: str) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "heron_common.probe", target], timeout=30, check=False
    )
    return done.returncode


def test_the_probe_finds_every_process_healthy(stack: Stack) -> None:
    assert _probe(f"{stack.base_url}/health") == 0
    assert _probe(f"{stack.base_url}/ready") == 0
    for service in SERVICES:
        port = stack.backends[service.name].env[service.port_variable]
        assert _probe(f"grpc://127.0.0.1:{port}") == 0, service.name
    assert _probe(f"{stack.base_url}/no-such-page") == 1
