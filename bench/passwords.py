"""What one argon2id verification costs on this machine, with the auth service's settings.

A login is mostly that verification; its target allows a few milliseconds on top of it.
"""

from __future__ import annotations

import statistics
import time

from argon2 import PasswordHasher
from heron_auth.settings import AuthSettings

SAMPLES = 30


def argon2_verify_ms() -> float:
    """The median of `SAMPLES` verifications of a correct password, in ms."""
    fields = AuthSettings.model_fields
    hasher = PasswordHasher(
        time_cost=fields["argon2_time_cost"].default,
        memory_cost=fields["argon2_memory_kib"].default,
        parallelism=fields["argon2_parallelism"].default,
    )
    stored = hasher.hash("bench-password")
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        hasher.verify(stored, "bench-password")
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)
