"""Heron's channels spread calls over every address a target names (round-robin), where
gRPC's default would pin one connection to one server: two real gRPC servers, one target."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from heron_common.rpc.client import create_channel, retry_service_config


class CountingHealth(health.aio.HealthServicer):
    """A real health service (Watch included, as Heron's servers have) that counts Checks."""

    def __init__(self, name: str, seen: Counter[str]) -> None:
        super().__init__()
        self.name, self.seen = name, seen

    async def Check(self, request: Any, context: Any) -> Any:
        self.seen[self.name] += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _servers(
    seen: Counter[str], healths: list[CountingHealth] | None = None
) -> tuple[list[grpc.aio.Server], str]:
    servers, addresses = [], []
    for name in ("first", "second"):
        server = grpc.aio.server()
        servicer = CountingHealth(name, seen)
        if healths is not None:
            healths.append(servicer)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        addresses.append(f"127.0.0.1:{port}")
    return servers, "ipv4:" + ",".join(addresses)


async def _calls(channel: grpc.aio.Channel, count: int) -> None:
    stub: Any = health_pb2_grpc.HealthStub(channel)
    for _ in range(count):
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)


async def test_calls_are_spread_over_every_address() -> None:
    seen: Counter[str] = Counter()
    servers, target = await _servers(seen)
    try:
        async with create_channel(target) as channel:
            await _calls(channel, 40)
        assert seen["first"] >= 10 and seen["second"] >= 10, seen
        # With a retry policy of its own (the gateway's channels) too.
        seen.clear()
        config = retry_service_config("grpc.health.v1.Health", ["Check"])
        async with create_channel(target, service_config=config) as channel:
            await _calls(channel, 40)
        assert seen["first"] >= 10 and seen["second"] >= 10, seen
        # gRPC's default keeps to one server: what Heron's channels avoid.
        seen.clear()
        async with grpc.aio.insecure_channel(target) as channel:
            await _calls(channel, 40)
        assert sorted(seen.values()) == [40]
    finally:
        for server in servers:
            await server.stop(None)


async def test_a_draining_server_gets_no_new_calls() -> None:
    seen: Counter[str] = Counter()
    healths: list[CountingHealth] = []
    servers, target = await _servers(seen, healths)
    try:
        async with create_channel(target) as channel:
            await _calls(channel, 20)
            assert seen["first"] and seen["second"], seen
            # The first server drains, as a Heron process does on SIGTERM: NOT_SERVING, and
            # still answering what reaches it.
            await healths[0].enter_graceful_shutdown()
            for _ in range(50):
                before = dict(seen)
                await _calls(channel, 10)
                if seen["first"] == before.get("first", 0):
                    break
                await asyncio.sleep(0.05)
            seen.clear()
            await _calls(channel, 30)
            assert seen == Counter({"second": 30}), seen
    finally:
        for server in servers:
            await server.stop(None)
