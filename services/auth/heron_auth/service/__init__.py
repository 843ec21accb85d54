"""Auth use cases, one class per aggregate: `Sessions` (sign-in, refresh, sign-out and what
verifiers need), `Users` (accounts, the caller's own included), `Roles` and `ApiTokens`, on
one database, whose writes' events reach the service's bus after their commit."""

from __future__ import annotations

from heron_common.db import Database
from heron_common.events import EventBus

from heron_auth.passwords import Passwords
from heron_auth.service.api_tokens import ApiTokens
from heron_auth.service.common import Context
from heron_auth.service.roles import Roles
from heron_auth.service.sessions import Issued, Sessions
from heron_auth.service.users import Users
from heron_auth.settings import AuthSettings
from heron_auth.throttle import SignInThrottle
from heron_auth.tokens import TokenIssuer

__all__ = ["AuthService", "Issued"]


class AuthService:
    def __init__(
        self,
        database: Database,
        settings: AuthSettings,
        passwords: Passwords,
        issuer: TokenIssuer,
        throttle: SignInThrottle,
    ) -> None:
        self.settings = settings
        self.issuer = issuer
        # Every write's events, after its commit; after-events go to the outbox once attached.
        self.events = EventBus()
        self.context = context = Context(database, settings, self.events)
        self.roles = Roles(context)
        self.users = Users(context, passwords, throttle)
        self.sessions = Sessions(context, passwords, issuer, throttle, self.users)
        self.api_tokens = ApiTokens(context, issuer)
