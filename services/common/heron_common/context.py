"""Per-request context carried across async calls: the request id (and, later, the principal)."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("heron_request_id", default="")

REQUEST_ID_METADATA_KEY = "x-request-id"

# The caller asked for a fresh answer (`Cache-Control: no-cache`): every cache tier on the way
# is skipped, the services' own included, so the answer comes from the database.
fresh_var: ContextVar[bool] = ContextVar("heron_fresh", default=False)
FRESH_METADATA_KEY = "x-heron-fresh"
MAX_REQUEST_ID_LENGTH = 128


def new_request_id() -> str:
    """128 random bits as 32 hex digits (the shape of a uuid4's hex, for less work)."""
    return os.urandom(16).hex()


# What a caller's id may look like: it is echoed in a header and written to logs, so no
# markup, quotes, spaces or escapes.
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_LENGTH}}}")


def clean_request_id(value: str | None) -> str:
    """Accept a caller's request id only if it is `[A-Za-z0-9._:-]{1,128}`; otherwise make one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()
