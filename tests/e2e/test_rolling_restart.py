"""A rolling restart at process level, as Kubernetes does one: two gateways and two content
processes (the gateways spread their calls over both with gRPC round-robin, as they do over a
headless Service), each restarted in turn with SIGTERM under a steady load of reads and writes:
no request fails."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
from heron_common import probe

from tests.conftest import free_port, throwaway_database
from tests.e2e.conftest import Service, Stack, start_stack

WORKERS = 4
DRAIN_SECONDS = "1.5"
# What a Kubernetes preStop pause gives the endpoints to drop a pod before its SIGTERM.
ENDPOINTS_SECONDS = 0.5
SETTLE_SECONDS = 2.5


@dataclass
class Front:
    """A load balancer in front of the gateways: round-robin over those in rotation."""

    urls: list[str]
    out: set[str] = field(default_factory=set)
    turn: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self) -> str:
        with self.lock:
            ready = [u for u in self.urls if u not in self.out]
            self.turn += 1
            return ready[self.turn % len(ready)]


@dataclass
class Load:
    front: Front
    token: str
    collection: str
    item_id: str
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, worker: int) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10, headers=headers) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                base = self.front.pick()
                try:
                    if n % 3 == 0:
                        reply = client.post(
                            f"{base}/api/content",
                            json={"collection": self.collection, "title": f"w{worker} {n}"},
                        )
                    else:
                        # Past every cache: the content service answers each one.
                        reply = client.get(
                            f"{base}/api/content/{self.item_id}",
                            headers={"cache-control": "no-cache"},
                        )
                    ok = reply.status_code in (200, 201)
                    problem = f"{reply.status_code} {reply.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, repr(exc)
                with self.lock:
                    self.sent += 1
                    if not ok:
                        self.failures.append(problem)


def _wait(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds} s"
        time.sleep(0.05)


def _restart(process: Service, ready: str) -> None:
    process.signal(signal.SIGTERM)
    assert process.popen is not None
    process.popen.wait(30)
    process.start()
    _wait(lambda: probe.healthy(ready), f"{process.name} ready again")


@pytest.fixture
def fleet(
    tmp_path: Path, postgres_server_url: str, redis_url: str
) -> Iterator[tuple[Stack, list[Service], list[Service]]]:
    with throwaway_database(postgres_server_url) as content_url:
        stack = start_stack(
            tmp_path,
            content_url,
            seed=False,
            extra_env={
                "HERON_REDIS_URL": redis_url,
                "HERON_CONTENT_SHUTDOWN_DRAIN_SECONDS": DRAIN_SECONDS,
                "HERON_GATEWAY_RPC_TIMEOUT_SECONDS": "10",
            },
        )
        extra: list[Service] = []
        try:
            first = stack.content
            second = replace(
                first,
                name="content-b",
                env={**first.env, "HERON_CONTENT_GRPC_PORT": str(free_port())},
                log_path=tmp_path / "content-b.log",
                popen=None,
            )
            second.start()
            extra.append(second)
            contents = [first, second]
            target = "ipv4:" + ",".join(
                f"127.0.0.1:{c.env['HERON_CONTENT_GRPC_PORT']}" for c in contents
            )
            # The stack's own gateway knows one content process: two new ones know both.
            stack.gateway.stop()
            gateways = []
            for label in ("a", "b"):
                gateway = replace(
                    stack.gateway,
                    name=f"gateway-{label}",
                    env={
                        **stack.gateway.env,
                        "HERON_GATEWAY_PORT": str(free_port()),
                        "HERON_CONTENT_TARGET": target,
                    },
                    log_path=tmp_path / f"gateway-{label}.log",
                    popen=None,
                )
                gateway.start()
                gateways.append(gateway)
                extra.append(gateway)
            for c in contents:
                port = c.env["HERON_CONTENT_GRPC_PORT"]
                _wait(lambda p=port: probe.healthy(f"grpc://127.0.0.1:{p}"), "content ready")
            for g in gateways:
                url = f"http://127.0.0.1:{g.env['HERON_GATEWAY_PORT']}/ready"
                _wait(lambda u=url: probe.healthy(u), "gateway ready")
            yield stack, contents, gateways
        finally:
            for process in extra:
                process.stop()
            stack.stop()


def test_restarting_every_process_in_turn_fails_no_request(
    fleet: tuple[Stack, list[Service], list[Service]],
) -> None:
    stack, contents, gateways = fleet
    urls = [f"http://127.0.0.1:{g.env['HERON_GATEWAY_PORT']}" for g in gateways]
    admin = httpx.post(
        f"{urls[0]}/auth/login",
        json={"email": stack.admin_email, "password": "canary-Admin-Pw-5c1e9d"},
    )
    token = admin.json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    collection = f"rolling_{uuid.uuid4().hex[:6]}"
    made = httpx.post(
        f"{urls[0]}/api/collections", json={"name": collection, "schema": {}}, headers=headers
    )
    assert made.status_code == 201, made.text
    item = httpx.post(
        f"{urls[0]}/api/content",
        json={"collection": collection, "title": "read me"},
        headers=headers,
    )
    assert item.status_code == 201, item.text
    front = Front(urls)
    load = Load(front, token, collection, item.json()["data"]["id"])
    threads = [threading.Thread(target=load.run, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for content in contents:
            port = content.env["HERON_CONTENT_GRPC_PORT"]
            _restart(content, f"grpc://127.0.0.1:{port}")
            # As a Deployment's minReadySeconds would: every gateway reconnects to the new
            # process (its channels back off up to 1 s, with 20 % jitter, and then check its
            # health) before the other one drains.
            time.sleep(SETTLE_SECONDS)
        for gateway, url in zip(gateways, urls, strict=True):
            front.out.add(url)  # the endpoints drop it first, as a preStop pause lets them
            time.sleep(ENDPOINTS_SECONDS)
            _restart(gateway, f"{url}/ready")
            front.out.discard(url)
            time.sleep(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(30)
    print(f"rolling restart: {load.sent} requests, {len(load.failures)} failed")
    assert load.sent > 100
    assert load.failures == [], load.failures[:5]
    # Both content processes served: the calls were spread, not pinned to one.
    for content in contents:
        assert content.log().count("item created") > 5, content.name
