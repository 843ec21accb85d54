"""Echo gRPC server of the hop floor: raw-bytes methods, no protobuf, no interceptor.

`/heron.bench.Echo/Sized` takes a decimal byte count and answers that many bytes (like a
read: small request, sized reply); `/heron.bench.Echo/Echo` answers its request unchanged
(like a create: the body goes in, an item of about the same size comes back).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import grpc
import uvloop

SERVICE = "heron.bench.Echo"
MAX_MESSAGE = 16 * 1024 * 1024

_sized: dict[int, bytes] = {}


async def sized(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    size = min(int(request or b"0"), MAX_MESSAGE)
    reply = _sized.get(size)
    if reply is None:
        reply = _sized[size] = b"x" * size
    return reply


async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(port: int) -> None:
    # The same server options as Heron's services, minus their interceptor: the floor is the
    # hop itself, and what Heron adds on top of it is what the ratio shows.
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ]
    )
    # No (de)serializers: grpc hands the handlers raw bytes, so no .proto is needed.
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Sized": grpc.unary_unary_rpc_method_handler(sized),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    # uvloop, as Heron's services run.
    uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
