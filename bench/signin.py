"""Signing in as the run's first admin: the bearer token seeding and the scenarios send."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.errors import BenchError

LOGIN_PATH = "/auth/login"


@dataclass(frozen=True)
class Session:
    user_id: str
    token: str
    expires_in: int  # seconds, as the gateway answered
    obtained_at: float  # time.monotonic()

    def fresh(self, margin: float = 0.5) -> bool:
        """True while less than `margin` of the token's lifetime has passed."""
        return time.monotonic() - self.obtained_at < self.expires_in * margin


def sign_in(base_url: str, email: str, password: str) -> Session:
    """`POST /auth/login` (the same successful login the `login` scenario measures)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        obtained_at = time.monotonic()
        try:
            reply = client.post(LOGIN_PATH, json={"email": email, "password": password})
        except httpx.TransportError as exc:
            raise BenchError(f"signing in as {email} failed: {exc!r}") from exc
    if reply.status_code != 200:
        raise BenchError(f"signing in as {email} failed: {reply.status_code} {reply.text[:300]}")
    body = reply.json()
    return Session(
        user_id=str(body["user"]["id"]),
        token=str(body["token"]),
        expires_in=int(body.get("expires_in") or 600),
        obtained_at=obtained_at,
    )
