"""Per-method permissions of a gRPC service: who may call what, deny by default.

Every method of a service is declared with what it needs: a permission string, `AUTHENTICATED`
(any signed-in principal), `PUBLIC` (anyone; the method authenticates by its own inputs) or
`INTERNAL` (another Heron process: the call carries the installation's `HERON_INTERNAL_SECRET`;
the principal is still whoever its token says, or anonymous).
A method missing from the declaration is refused. Credentials come from the `authorization`
metadata and are verified here, by the service itself: a call that reaches a service directly
without valid credentials is anonymous, and one with invalid credentials is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from heron_common.errors import PermissionDenied, Unauthenticated, authentication_required
from heron_common.security.identity import Authenticator, bearer_token
from heron_common.security.permissions import Principal, anonymous

PUBLIC = "public"
AUTHENTICATED = "authenticated"
INTERNAL = "internal"
INTERNAL_METADATA_KEY = "heron-internal"
# Standard services every server runs; they reveal nothing about the data.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

principal_var: ContextVar[Principal | None] = ContextVar("heron_principal", default=None)


def current_principal() -> Principal:
    """The principal of the call being served (set by the server interceptor)."""
    principal = principal_var.get()
    if principal is None:
        raise RuntimeError("no principal bound: is the method declared in the service's policy?")
    return principal


def deny(principal: Principal, message: str) -> Unauthenticated | PermissionDenied:
    """401 for an anonymous caller (signing in may help), 403 for a signed-in one."""
    if principal.anonymous:
        return authentication_required(message)
    return PermissionDenied(message)


class MethodPolicy:
    def __init__(
        self,
        authenticator: Authenticator,
        service: str,
        requirements: Mapping[str, str],
        internal_secret: str = "",
    ) -> None:
        self.authenticator = authenticator
        self.internal_secret = internal_secret
        self.requirements = {f"/{service}/{name}": need for name, need in requirements.items()}

    def declared(self, method: str) -> bool:
        return method in self.requirements or method.startswith(_OPEN_PREFIXES)

    async def authorize(self, method: str, metadata: Iterable[tuple[str, Any]]) -> Principal:
        need = self.requirements.get(method)
        if need is None:
            if method.startswith(_OPEN_PREFIXES):
                return anonymous({})  # health and reflection need no permission
            raise PermissionDenied("This method is not open to callers.")
        token = None
        vouched = ""
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                token = bearer_token(value)
                if token is None:
                    raise Unauthenticated("Only Bearer access tokens are accepted.")
            elif key == INTERNAL_METADATA_KEY and isinstance(value, str):
                vouched = value
        if need == INTERNAL and not (
            self.internal_secret and hmac.compare_digest(vouched, self.internal_secret)
        ):
            raise PermissionDenied(
                "This method is for Heron's own processes (they send HERON_INTERNAL_SECRET)."
            )
        principal = (
            await self.authenticator.verify(token) if token else self.authenticator.anonymous()
        )
        if need in (PUBLIC, INTERNAL):
            return principal
        if need == AUTHENTICATED:
            if principal.anonymous:
                raise authentication_required()
            return principal
        if not principal.may(need):
            raise deny(principal, f"this needs the `{need}` permission.")
        return principal
