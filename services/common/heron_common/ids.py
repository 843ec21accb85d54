"""Ids and clocks, the same in every service: record ids are canonical UUIDs (version 4, lower
case, hyphenated), timestamps are epoch milliseconds."""

from __future__ import annotations

import time
import uuid


def new_id() -> str:
    return str(uuid.uuid4())


def is_id(value: str) -> bool:
    """Whether `value` is an id in its canonical form (anything else cannot name a record)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def now_ms() -> int:
    return int(time.time() * 1000)
