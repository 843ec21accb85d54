"""Hop floor: a FastAPI route making one grpc.aio unary call and returning the reply's bytes.

FastAPI because Heron's gateway is FastAPI on every uncached path: the floor is what that
framework plus one gRPC round trip cost here, so the ratio isolates Heron's own work
(middleware, validation, the service's database read, protobuf and JSON). The channel is made
by Heron's `create_channel`, with the gateway's options. Served with the gateway's uvicorn
settings.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from heron_common.rpc.client import create_channel
from starlette.responses import Response

from bench.floors import serve

TARGET_ENV = "BENCH_ECHO_TARGET"
TIMEOUT = 5.0

# Filled in the lifespan: unary callables taking and returning raw bytes.
_calls: dict[str, Any] = {}


def create_app() -> FastAPI:
    target = os.environ[TARGET_ENV]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        channel = create_channel(target)
        _calls["sized"] = channel.unary_unary("/heron.bench.Echo/Sized")
        _calls["echo"] = channel.unary_unary("/heron.bench.Echo/Echo")
        try:
            yield
        finally:
            await channel.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/sized/{size}")
    async def sized(size: int) -> Response:
        reply = await _calls["sized"](str(size).encode(), timeout=TIMEOUT)
        return Response(reply, media_type="application/json")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        reply = await _calls["echo"](await request.body(), timeout=TIMEOUT)
        return Response(reply, status_code=201, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port of the echo gRPC server")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ[TARGET_ENV] = args.target  # read by every worker's factory call
    serve(
        "bench.floors.echo_gateway:create_app", port=args.port, workers=args.workers, factory=True
    )


if __name__ == "__main__":
    main()
