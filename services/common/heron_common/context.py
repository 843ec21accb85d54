"""Per-request context carried across async calls: the request id (and, later, the principal)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("heron_request_id", default="")

REQUEST_ID_METADATA_KEY = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """Accept a caller's request id only if it is short and printable; otherwise make a new one."""
    if value and len(value) <= MAX_REQUEST_ID_LENGTH and value.isascii() and value.isprintable():
        return value
    return new_request_id()
