"""A container health probe without extra binaries: `python -m heron_common.probe <target>`.

`http://host:port/path` is healthy on a 200; `grpc://host:port` when the gRPC health service
says SERVING (the process's overall status, which turns NOT_SERVING while it drains). With no
target, `$HERON_PROBE` names it (the image's HEALTHCHECK uses that, so one image serves every
component). Exit status 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 3.0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its stubs type it for aio only
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def healthy(target: str) -> bool:
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        return http_ok(target)
    if parts.scheme == "grpc":
        return grpc_serving(parts.netloc)
    raise SystemExit(f"probe: {target!r} is neither http(s)://… nor grpc://host:port")


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else os.environ.get("HERON_PROBE", "")
    if not target:
        target = "http://127.0.0.1:8000/health"
    return 0 if healthy(target) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
