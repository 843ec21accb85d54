"""Passwordless sign-in through the gateway, with mail to a real local SMTP server (aiosmtpd)
and a SendGrid-shaped HTTP receiver: codes and links that work once, expire, resist guessing
and rate limits, tell nobody which addresses are accounts, and mail that survives an outage."""

from __future__ import annotations

import email
import json
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port
from tests.e2e.conftest import Stack, start_stack

FAST_MAIL = {"retry_base_seconds": 0.3, "retry_max_seconds": 1, "max_attempts": 200}


class SmtpInbox:
    """A real SMTP server on a port of its own, keeping what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Message] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Message]:
        return [m for m in self.received if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, seconds: float = 20) -> list[Message]:
        deadline = time.monotonic() + seconds
        while len(self.to(address)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        found = self.to(address)
        assert len(found) >= count, (address, len(found))
        return found


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def code_in(message: Message) -> str:
    found = re.search(r"^\s+(\d{6})\s*$", text_of(message), re.M)
    assert found, text_of(message)
    return found.group(1)


def link_in(message: Message) -> str:
    found = re.search(r"https?://\S+/auth/magic-link/verify\?token=\S+", text_of(message))
    assert found, text_of(message)
    return found.group(0)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox()
    inbox.start()
    yield inbox
    inbox.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpInbox) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("passwordless"), seed=False)
    running.sign_in_admin()
    client = running.client
    for name in ("email", "otp-login", "magic-link-auth"):
        assert client.post(f"/api/plugins/{name}/install").status_code == 200, name
    mail = {
        "backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "from_address": "sign-in@heron.test",
        **FAST_MAIL,
    }
    assert client.put("/api/plugins/email/settings", json=mail).status_code == 200
    link = {"link_base_url": running.base_url, "redirect_url": "/welcome", "sign_in_url": "/in"}
    assert client.put("/api/plugins/magic-link-auth/settings", json=link).status_code == 200
    for name in ("email", "otp-login", "magic-link-auth"):
        assert client.post(f"/api/plugins/{name}/activate").status_code == 200, name
    # The gateway serves the routes once it heard of the activation.
    deadline = time.monotonic() + 10
    while running.anon.post("/auth/otp/request", json={"email": "x@y.z"}).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield running
    running.stop()


def _settings(stack: Stack, plugin: str, **values: Any) -> None:
    current = stack.client.get(f"/api/plugins/{plugin}/settings").json()["data"]["settings"]
    reply = stack.client.put(f"/api/plugins/{plugin}/settings", json={**current, **values})
    assert reply.status_code == 200, reply.text


def _request(stack: Stack, address: str, path: str = "/auth/otp/request") -> httpx.Response:
    return stack.anon.post(path, json={"email": address})


def test_a_mailed_code_signs_in_once(stack: Stack, smtp: SmtpInbox) -> None:
    user = stack.user("editor")
    sent = _request(stack, user.email)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {
        "message": "If an account exists, a verification code has been sent",
        "expiresIn": 600,
    }
    message = smtp.wait_for(user.email)[-1]
    assert message["From"] == "Heron <sign-in@heron.test>"
    code = code_in(message)
    assert message.get_content_type() == "multipart/alternative"  # text and HTML

    wrong = "000000" if code != "000000" else "111111"
    refused = stack.anon.post("/auth/otp/verify", json={"email": user.email, "code": wrong})
    assert refused.status_code == 401
    signed_in = httpx.post(
        f"{stack.base_url}/auth/otp/verify", json={"email": user.email.upper(), "code": code}
    )
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["user"]["email"] == user.email and body["token"] and body["refresh_token"]
    assert {"auth_token", "heron_refresh", "csrf_token"} <= set(signed_in.cookies)
    me = stack.anon.get("/auth/me", headers={"authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["user"]["email"] == user.email
    # The refresh token is a session's like any other.
    refreshed = stack.anon.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    again = stack.anon.post("/auth/otp/verify", json={"email": user.email, "code": code})
    assert again.status_code == 401


def test_a_code_dies_after_five_wrong_tries_and_when_it_expires(
    stack: Stack, smtp: SmtpInbox
) -> None:
    user = stack.user("viewer")
    assert _request(stack, user.email).status_code == 200
    code = code_in(smtp.wait_for(user.email)[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        tried = stack.anon.post("/auth/otp/verify", json={"email": user.email, "code": wrong})
        assert tried.status_code == 401
    late = stack.anon.post("/auth/otp/verify", json={"email": user.email, "code": code})
    assert late.status_code == 401

    _settings(stack, "otp-login", expires_seconds=1)
    try:
        assert stack.anon.post("/auth/otp/resend", json={"email": user.email}).status_code == 200
        expiring = code_in(smtp.wait_for(user.email, 2)[-1])
        time.sleep(1.5)
        expired = stack.anon.post("/auth/otp/verify", json={"email": user.email, "code": expiring})
        assert expired.status_code == 401
    finally:
        _settings(stack, "otp-login", expires_seconds=600)


def test_bad_input_is_refused_with_the_field_named(stack: Stack) -> None:
    for path in ("/auth/otp/request", "/auth/otp/resend", "/auth/magic-link/request"):
        bad = stack.anon.post(path, json={"email": "not-an-address"})
        assert bad.status_code == 400, (path, bad.text)
        assert "Validation failed" in bad.json()["error"]
        assert bad.json()["details"][0]["field"] == "email"
    for code in ("12ab56", "123", "123456789"):
        bad = stack.anon.post("/auth/otp/verify", json={"email": "a@example.com", "code": code})
        assert bad.status_code == 400, (code, bad.text)
        assert bad.json()["details"][0]["field"] == "code"


def test_nobody_learns_which_addresses_are_accounts(stack: Stack, smtp: SmtpInbox) -> None:
    user = stack.user("author")
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    timings: dict[str, list[float]] = {user.email: [], unknown: []}
    answers = {}
    for _ in range(3):
        for address in (user.email, unknown):
            started = time.perf_counter()
            reply = _request(stack, address)
            timings[address].append(time.perf_counter() - started)
            answers[address] = (reply.status_code, reply.json())
    assert answers[user.email] == answers[unknown]
    # Similar timing: the same work is done for both, only the mail differs.
    known, other = (statistics.median(timings[a]) for a in (user.email, unknown))
    assert abs(known - other) < 0.2, timings
    smtp.wait_for(user.email, 3)
    time.sleep(0.5)
    assert smtp.to(unknown) == []


def test_requests_are_limited_per_address_and_per_client(stack: Stack) -> None:
    _settings(stack, "otp-login", requests_per_email=3, requests_per_ip=1000)
    try:
        address = f"limited-{uuid.uuid4().hex[:8]}@example.com"
        statuses = [_request(stack, address).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = _request(stack, address)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        _settings(stack, "otp-login", requests_per_email=100, requests_per_ip=4)
        spread = [
            _request(stack, f"spread-{n}-{uuid.uuid4().hex[:6]}@example.com").status_code
            for n in range(6)
        ]
        assert 429 in spread
    finally:
        _settings(stack, "otp-login", requests_per_email=1000, requests_per_ip=100000)


def test_a_magic_link_signs_in_once_and_bad_ones_go_back_to_sign_in(
    stack: Stack, smtp: SmtpInbox
) -> None:
    user = stack.user("editor")
    sent = _request(stack, user.email, "/auth/magic-link/request")
    assert sent.status_code == 200 and "magic link" in sent.json()["message"]
    link = link_in(smtp.wait_for(user.email)[-1])
    token = parse_qs(urlsplit(link).query)["token"][0]
    with httpx.Client(follow_redirects=False) as browser:
        opened = browser.get(link)
        assert opened.status_code == 302, opened.text
        assert opened.headers["location"] == "/welcome"
        session = opened.cookies["auth_token"]
        me = stack.anon.get("/auth/me", headers={"authorization": f"Bearer {session}"})
        assert me.json()["user"]["email"] == user.email
        reused = browser.get(link)
        assert (reused.status_code, reused.headers["location"]) == (302, "/in?error=used")
        assert "auth_token" not in reused.cookies
        forged = browser.get(f"{stack.base_url}/auth/magic-link/verify?token=hml_forged")
        assert forged.headers["location"] == "/in?error=invalid"
    _settings(stack, "magic-link-auth", expires_seconds=1)
    try:
        assert _request(stack, user.email, "/auth/magic-link/request").status_code == 200
        expiring = link_in(smtp.wait_for(user.email, 2)[-1])
        time.sleep(1.5)
        late = httpx.get(expiring, follow_redirects=False)
        assert late.headers["location"] == "/in?error=expired"
    finally:
        _settings(stack, "magic-link-auth", expires_seconds=900)
    # The token travels in that one URL only: anywhere else it is refused, and no log has it.
    elsewhere = stack.anon.get("/api/content", params={"token": token})
    assert elsewhere.status_code == 401
    assert token not in stack.logs()


def test_sign_in_by_email_is_off_until_its_plugin_is_active(stack: Stack) -> None:
    assert stack.client.post("/api/plugins/magic-link-auth/deactivate").status_code == 200
    try:
        deadline = time.monotonic() + 10
        while _request(stack, "a@example.com", "/auth/magic-link/request").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert _request(stack, "a@example.com").status_code == 200  # the other one is on
    finally:
        assert stack.client.post("/api/plugins/magic-link-auth/activate").status_code == 200
        deadline = time.monotonic() + 10
        while _request(stack, "a@example.com", "/auth/magic-link/request").status_code == 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_an_smtp_outage_delays_mail_and_loses_none(stack: Stack, smtp: SmtpInbox) -> None:
    users = [stack.user("viewer") for _ in range(3)]
    smtp.stop()
    try:
        for user in users:
            started = time.perf_counter()
            assert _request(stack, user.email).status_code == 200
            assert time.perf_counter() - started < 2  # the request never waits on the mail
        time.sleep(30)  # thirty seconds of failed attempts, with the server away
        assert all(smtp.to(u.email) == [] for u in users)
    finally:
        smtp.start()
    for user in users:
        smtp.wait_for(user.email, seconds=30)
    time.sleep(2)
    assert [len(smtp.to(u.email)) for u in users] == [1, 1, 1]  # each once
    listed = stack.client.get("/api/plugins/email/messages")
    assert listed.status_code == 200, listed.text
    messages = listed.json()["data"]
    mine = [m for m in messages if m["to_address"] in {u.email for u in users}]
    assert len(mine) == 3 and all(m["status"] == "sent" and m["attempts"] > 1 for m in mine)


class SendGridReceiver(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        SendGridReceiver.calls.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": json.loads(body),
            }
        )
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_the_sendgrid_backend_calls_sendgrids_api(stack: Stack, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SendGridReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = "SG.test-key-" + uuid.uuid4().hex
    _settings(
        stack,
        "email",
        backend="sendgrid",
        sendgrid_api_key=key,
        sendgrid_api_url=f"http://127.0.0.1:{server.server_port}",
    )
    try:
        user = stack.user("viewer")
        assert _request(stack, user.email).status_code == 200
        deadline = time.monotonic() + 20
        while not SendGridReceiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        call = SendGridReceiver.calls[-1]
        assert call["path"] == "/v3/mail/send"
        assert call["headers"]["authorization"] == f"Bearer {key}"
        body = call["body"]
        assert body["personalizations"] == [{"to": [{"email": user.email}]}]
        assert body["from"]["email"] == "sign-in@heron.test"
        kinds = [c["type"] for c in body["content"]]
        assert kinds == ["text/plain", "text/html"]
        assert re.search(r"\b\d{6}\b", body["content"][0]["value"])
        # The key is write-only: no read returns it.
        assert key not in stack.client.get("/api/plugins/email/settings").text
        assert key not in stack.logs()
    finally:
        _settings(stack, "email", backend="smtp")
        server.shutdown()
        server.server_close()
