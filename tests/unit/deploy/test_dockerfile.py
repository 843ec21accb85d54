"""The image's Dockerfile, checked against the rules the operations depend on (no Docker
engine here to build it: the rules are checked on the parsed file)."""

from __future__ import annotations

import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from heron_common.registry import SERVICES

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stages() -> list[list[dict[str, Any]]]:
    parsed = DockerfileParser(path=str(ROOT / "Dockerfile"))
    found: list[list[dict[str, Any]]] = []
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def _all(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_a_slim_runtime_stage_apart_from_the_build(stages: list[list[dict[str, Any]]]) -> None:
    assert len(stages) >= 2
    runtime = stages[-1]
    assert "slim" in _all(runtime, "FROM")[0]
    # Nothing of the build in the final stage: no uv, no compilers, no caches.
    runtime_text = " ".join(i["value"] for i in runtime)
    for tool in ("uv sync", "/bin/uv", "apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in runtime_text, tool
    copies = _all(runtime, "COPY")
    assert copies and all(c.startswith("--from=build") for c in copies)


def test_dependencies_are_a_layer_of_their_own(stages: list[list[dict[str, Any]]]) -> None:
    build = stages[0]
    steps = [(i["instruction"], i["value"]) for i in build]
    syncs = [n for n, (kind, value) in enumerate(steps) if kind == "RUN" and "uv sync" in value]
    source = steps.index(("COPY", ". ."))
    assert syncs[0] < source < syncs[-1]
    assert "--no-install-workspace" in steps[syncs[0]][1] and "--frozen" in steps[syncs[0]][1]
    assert "--no-dev" in steps[syncs[-1]][1]
    # Every workspace member's project file is there for the dependency layer.
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    copied = {value.split()[0] for kind, value in steps[:source] if kind == "COPY"}
    for member in workspace["members"]:
        assert f"{member}/pyproject.toml" in copied, member


def test_the_runtime_is_unprivileged_and_observable(stages: list[list[dict[str, Any]]]) -> None:
    runtime = stages[-1]
    user = _all(runtime, "USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000
    assert _all(runtime, "STOPSIGNAL") == ["SIGTERM"]
    (healthcheck,) = _all(runtime, "HEALTHCHECK")
    assert "heron_common.probe" in healthcheck and "--timeout" in healthcheck
    labels = " ".join(_all(runtime, "LABEL"))
    for label in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels, label
    exposed = " ".join(_all(runtime, "EXPOSE")).split()
    env = " ".join(_all(runtime, "ENV"))
    assert "8000" in exposed and "HERON_GATEWAY_HOST=0.0.0.0" in env
    for service in SERVICES:
        # A new service is served from the image too, reachable from other containers.
        assert str(service.default_port) in exposed, service.name
        assert f"HERON_{service.name.upper()}_GRPC_HOST=0.0.0.0" in env, service.name


def test_the_build_context_leaves_out_data_and_environments() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for path in (".git", ".venv", ".tools", "data", "**/__pycache__", "bench/results", ".env"):
        assert path in ignored, path


def test_the_probe_tells_healthy_from_not() -> None:
    from heron_common import probe

    with pytest.raises(SystemExit):
        probe.healthy("ftp://example.com")
    # Nothing listens on port 9 of this machine: not healthy, at once.
    assert not probe.healthy("http://127.0.0.1:9/health")
    assert not probe.healthy("grpc://127.0.0.1:9")

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert probe.healthy(f"{base}/health")
        assert not probe.healthy(f"{base}/ready")
        assert probe.main(["probe", f"{base}/health"]) == 0
    finally:
        server.shutdown()
        server.server_close()
