"""Sign-in and password-change limits, enforced by the auth service itself.

They hold however the service is reached: through any gateway, or straight at its gRPC port
(a direct caller is counted under its own address; see `heron_common.rpc.peers`). Counts live in
Redis when configured, shared by every replica, and in memory otherwise.

- Every sign-in attempt counts against the client address (`login_attempts_per_ip`).
- Failures count against the (account, address) pair, progressively: `n` per window, `2n` per
  four windows, `4n` per 96 windows (15 min, 1 h, 24 h with the defaults). A pair over any of
  them is refused before the password is checked. One attacker cannot lock an account for
  everyone else: other addresses are counted apart.
- Failures also count against the account from every address (`login_failures_per_account`,
  higher). Over it, a distributed attack is under way: only an address the account signed in
  from before (in the last 90 days) is still let through, with the right password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from heron_common.redis.ratelimit import Decision, RateLimited, RateLimiter

from heron_auth.settings import AuthSettings


def address_hash(address: str) -> str:
    return hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()


class SignInThrottle:
    def __init__(self, limiter: RateLimiter, settings: AuthSettings) -> None:
        self.limiter = limiter
        window = settings.login_window_seconds
        self.window = window
        self.ip_limit = settings.login_attempts_per_ip
        per_pair = settings.login_failures_per_account_and_ip
        self.pair_policies = (
            (per_pair, window),
            (2 * per_pair, 4 * window),
            (4 * per_pair, 96 * window),
        )
        self.account_limit = settings.login_failures_per_account

    async def close(self) -> None:
        await self.limiter.aclose()

    async def _hit(self, key: str, limit: int, window: int) -> Decision:
        decision = await self.limiter.hit(key, limit=limit, window_seconds=window)
        if not decision.allowed:
            raise RateLimited(decision)
        return decision

    async def _peek_all(self, key: str, policies: tuple[tuple[int, int], ...]) -> None:
        for limit, window in policies:
            decision = await self.limiter.peek(key, limit=limit, window_seconds=window)
            if not decision.allowed:
                raise RateLimited(decision)

    # -- sign-in -----------------------------------------------------------------------------
    async def before_login(
        self, account: str, address: str, known_address: Callable[[], Awaitable[bool]]
    ) -> None:
        """Raise `RateLimited` unless this attempt may check a password."""
        await self._hit(f"login:ip:{address}", self.ip_limit, self.window)
        await self._peek_all(f"login:pair:{account}:{address}", self.pair_policies)
        decision = await self.limiter.peek(
            f"login:account:{account}", limit=self.account_limit, window_seconds=self.window
        )
        if not decision.allowed and not await known_address():
            raise RateLimited(decision)

    async def login_failed(self, account: str, address: str) -> Decision:
        """Count a failure; the answer's `RateLimit-*` headers describe the pair's first limit."""
        decisions = [
            await self.limiter.hit(
                f"login:pair:{account}:{address}", limit=limit, window_seconds=window
            )
            for limit, window in self.pair_policies
        ]
        await self.limiter.hit(
            f"login:account:{account}", limit=self.account_limit, window_seconds=self.window
        )
        return decisions[0]

    async def login_succeeded(self, account: str, address: str) -> None:
        await self.limiter.reset(f"login:pair:{account}:{address}")

    # -- password change ---------------------------------------------------------------------
    async def before_password_check(self, user_id: str, address: str) -> None:
        await self._hit(f"password:ip:{address}", self.ip_limit, self.window)
        await self._peek_all(f"password:account:{user_id}", self.pair_policies[:1])

    async def password_check_failed(self, user_id: str) -> Decision:
        limit, window = self.pair_policies[0]
        return await self.limiter.hit(
            f"password:account:{user_id}", limit=limit, window_seconds=window
        )

    async def password_check_succeeded(self, user_id: str) -> None:
        await self.limiter.reset(f"password:account:{user_id}")
