"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from heron_common.errors import ErrorDetail, validation_failed

MAX_PASSWORD_LENGTH = 256

# Passwords every guessing list starts with; the check is case-insensitive.
COMMON_PASSWORDS = frozenset(
    """
    123456 123456789 12345678 1234567890 12345 1234567 password password1 password12
    password123 passw0rd qwerty qwerty123 qwertyuiop 1q2w3e4r 1q2w3e4r5t 1qaz2wsx abc123
    abcdef123 111111 000000 123123 123321 654321 666666 888888 7777777 987654321 iloveyou
    admin admin123 administrator welcome welcome1 welcome123 letmein letmein123 monkey dragon
    football baseball sunshine princess shadow master superman batman trustno1 starwars
    whatever freedom qazwsxedc zaq12wsx changeme changeme123 secret secret123 default
    p@ssw0rd p@ssword passwordpassword 1234512345 0123456789 9876543210 aa123456 asdfghjkl
    asdfasdfasdf zxcvbnm zxcvbnm123 heron heron123 heronheron hunter2 login123 user1234
    """.split()
)


def check_password(password: str, *, min_length: int, field: str = "password") -> None:
    """Raise `InvalidArgument` when the password is too short, too long or trivially common."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    folded = unicodedata.normalize("NFKC", password).casefold()
    if folded in COMMON_PASSWORDS or len(set(folded)) <= 2:
        problems.append("is too common or too simple; choose another")
    if problems:
        raise validation_failed(
            f"the password {problems[0]}.", [ErrorDetail(field, p) for p in problems]
        )


class Passwords:
    """argon2id hashing off the event loop, with a bound on concurrent hashes.

    Each hash takes tens of milliseconds and `memory_kib` of memory; the semaphore keeps a
    burst of logins from exhausting either.
    """

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._slots = asyncio.Semaphore(2)
        # Verified against when the account does not exist, so timing does not reveal it.
        self._dummy = self.hasher.hash("heron-no-such-account")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        async with self._slots:
            try:
                return (
                    await asyncio.to_thread(
                        self.hasher.verify, stored or self._dummy, password[:MAX_PASSWORD_LENGTH]
                    )
                    and stored is not None
                )
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)
