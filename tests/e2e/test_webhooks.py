"""The webhooks plugin through the gateway, with a real receiver: every delivery signed by the
Standard Webhooks convention (checked with the `standardwebhooks` package, as the README's
snippet does), retried while the receiver is away until each event arrived once, in order per
item, every attempt in the delivery log, a redeliver sending one again, and endpoints that
point at this machine refused unless allowed."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import free_port
from tests.e2e.conftest import Stack, start_stack


class Receiver:
    """A local HTTP server that verifies each post's signature and records it; it can be
    stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret = ""
        self.received: list[dict[str, Any]] = []
        self.invalid = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver._lock:
                        receiver.invalid += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append(
                        {"id": self.headers["webhook-id"], **orjson.loads(body)}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, item_id: str) -> list[tuple[str, str, int]]:
        with self._lock:
            return [
                (r["id"], r["type"], r["data"]["item"]["version"])
                for r in self.received
                if r["data"].get("item", {}).get("id") == item_id
            ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("webhooks")
    # Only the name `localhost` is allowed (the receiver); 127.0.0.1 itself is not.
    env = {"HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS": '["localhost"]'}
    running = start_stack(tmp, seed=False, extra_env=env)
    yield running
    running.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


def _eventually(check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_webhooks_are_signed_retried_in_order_and_replayable(
    stack: Stack, receiver: Receiver
) -> None:
    client = stack.client
    for action in ("install", "activate"):
        assert client.post(f"/api/plugins/webhooks/{action}").status_code == 200
    fast = {
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1,
        "max_attempts": 100,
        "disable_after_failures": 1000,
        "timeout_seconds": 2,
    }
    assert client.put("/api/plugins/webhooks/settings", json=fast).status_code == 200
    collection = f"hooked_{uuid.uuid4().hex[:6]}"
    other = f"other_{uuid.uuid4().hex[:6]}"
    for name in (collection, other):
        assert client.post("/api/collections", json={"name": name, "schema": {}}).is_success

    def endpoint(body: dict[str, Any]) -> Any:
        return client.post("/api/plugins/webhooks/endpoints", json=body)

    events = ["content:afterCreate", "content:afterUpdate"]
    # Endpoints at this machine, the private network or a metadata service are refused.
    answer = _eventually(
        lambda: (
            (r := endpoint({"url": "http://127.0.0.1:9/x", "events": events})).status_code != 404
            and r
        )
    )
    assert answer.status_code == 400, answer.text
    assert "HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS" in answer.json()["error"]
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "ftp://a.b/"):
        refused = endpoint({"url": url, "events": events})
        assert refused.status_code == 400 and refused.json()["details"][0]["field"] == "url"
    assert endpoint({"url": receiver.url, "events": ["nope"]}).status_code == 400
    assert stack.anon.get("/api/plugins/webhooks/endpoints").status_code == 401
    viewer = stack.user("viewer").client
    assert viewer.get("/api/plugins/webhooks/endpoints").status_code == 403

    made = endpoint({"url": receiver.url, "events": events, "collections": [collection]})
    assert made.status_code == 201, made.text
    hook = made.json()["data"]
    assert hook["secret"].startswith("whsec_")
    receiver.secret = hook["secret"]
    shown = client.get(f"/api/plugins/webhooks/endpoints/{hook['id']}").json()["data"]
    assert "secret" not in shown and shown["enabled"] is True

    def create(title: str, where: str = collection) -> str:
        reply = client.post("/api/content", json={"collection": where, "title": title})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["data"]["id"])

    def update(item_id: str, title: str) -> None:
        assert client.put(f"/api/content/{item_id}", json={"title": title}).status_code == 200

    # Once the content service knows the plugin listens (within about a second)...
    def probe() -> bool:
        probe_id = create("probe")
        return bool(_eventually(lambda: receiver.of(probe_id), 1.5))

    assert _eventually(probe, 15)
    # ... only the collections the endpoint asked for are sent.
    elsewhere = create("elsewhere", other)

    # The receiver away: 20 changes wait in the queue, and arrive once it is back.
    receiver.stop()
    first, second = create("first"), create("second")
    for n in range(9):
        update(first, f"first {n}")
        update(second, f"second {n}")
    time.sleep(1.5)  # several attempts fail meanwhile
    receiver.start()
    expected = {first: list(range(1, 11)), second: list(range(1, 11))}
    assert _eventually(
        lambda: all([v for _, _, v in receiver.of(i)] == want for i, want in expected.items()),
        30,
    ), {i: receiver.of(i) for i in expected}
    ids = [event_id for i in expected for event_id, _, _ in receiver.of(i)]
    assert len(ids) == 20 == len(set(ids))  # each event once, per its webhook-id
    assert receiver.of(first)[0][1] == "content:afterCreate"
    assert receiver.invalid == 0
    assert receiver.of(elsewhere) == []

    # The delivery log shows each attempt: those that failed, then the one that did not.
    log = client.get(f"/api/plugins/webhooks/endpoints/{hook['id']}/deliveries?limit=100")
    assert log.status_code == 200, log.text
    retried = [d for d in log.json()["data"] if len(d["attempts"]) > 1]
    assert retried, log.json()
    attempts = retried[0]["attempts"]
    assert attempts[0]["status_code"] is None and attempts[0]["error"]
    assert attempts[-1]["status_code"] == 204 and retried[0]["status"] == "delivered"
    assert all(a["duration_ms"] >= 0 for a in attempts)

    # A redeliver sends one again, with the same webhook-id.
    again = retried[0]
    redelivered = client.post(f"/api/plugins/webhooks/deliveries/{again['id']}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    assert _eventually(lambda: [r["id"] for r in receiver.received].count(again["event_id"]) == 2)
    assert (
        client.post(f"/api/plugins/webhooks/deliveries/{uuid.uuid4()}/redeliver").status_code == 404
    )

    # Deactivated: its routes are gone.
    assert client.post("/api/plugins/webhooks/deactivate").status_code == 200
    assert _eventually(lambda: client.get("/api/plugins/webhooks/endpoints").status_code == 404)

    # Uninstalled: its own tables go with it (its migrations undone); installed again: back.
    def tables() -> set[str]:
        plugins_db = Path(stack.backends["plugins"].env["HERON_DATA_DIR"]) / "plugins.db"
        with sqlite3.connect(plugins_db) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows if r[0].startswith("webhook_")}

    assert tables() == {"webhook_endpoints", "webhook_deliveries", "webhook_attempts"}
    assert client.post("/api/plugins/webhooks/uninstall").status_code == 200
    assert tables() == set()
    assert client.post("/api/plugins/webhooks/install").status_code == 200
    assert len(tables()) == 3


def test_an_endpoint_that_keeps_failing_is_disabled_and_its_owner_told(stack: Stack) -> None:
    client = stack.client
    found = client.get("/api/plugins/webhooks").json()["data"]
    if found["status"] == "available":
        assert client.post("/api/plugins/webhooks/install").status_code == 200
    assert client.post("/api/plugins/webhooks/activate").status_code == 200
    settings = {
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.1,
        "max_attempts": 2,
        "disable_after_failures": 3,
        "timeout_seconds": 1,
    }
    assert client.put("/api/plugins/webhooks/settings", json=settings).status_code == 200
    collection = f"failing_{uuid.uuid4().hex[:6]}"
    assert client.post("/api/collections", json={"name": collection, "schema": {}}).is_success
    # Nobody listens there.
    closed = f"http://localhost:{free_port()}/hook"
    made = _eventually(
        lambda: (
            (
                r := client.post(
                    "/api/plugins/webhooks/endpoints",
                    json={"url": closed, "events": ["*"], "collections": [collection]},
                )
            ).status_code
            == 201
            and r
        )
    )
    assert made, "the webhooks plugin never answered"
    hook = made.json()["data"]
    url = f"/api/plugins/webhooks/endpoints/{hook['id']}"

    def disabled() -> Any:
        client.post("/api/content", json={"collection": collection, "title": "again"})
        shown = client.get(url).json()["data"]
        return not shown["enabled"] and shown

    shown = _eventually(disabled, 20)
    assert shown and "3 failed attempts in a row" in shown["disabled_reason"]
    log = client.get(f"{url}/deliveries").json()["data"]
    assert any(d["status"] == "failed" for d in log)  # each tried `max_attempts` times at most
    assert all(len(d["attempts"]) <= 2 for d in log)
    me = client.get("/auth/me").json()["user"]["id"]
    activity = client.get("/api/plugins/webhooks/activity").json()["data"]
    told = [a for a in activity if a["action"] == "endpoint_disabled"]
    assert told and hook["id"] in told[0]["detail"] and me in told[0]["detail"]
    # Enabled again: a fresh start.
    again = client.patch(url, json={"enabled": True}).json()["data"]
    assert again["enabled"] and again["failures_in_a_row"] == 0 and not again["disabled_reason"]
