"""Who is calling, and may they: credentials → principal, and each route's declared access.

Every route declares what it needs with an `Access` dependency (a permission, `AUTHENTICATED`
or `PUBLIC`); a test enumerates the routes and fails on any without one. Credentials come from
`Authorization: Bearer` (an access token, or an API token `heron_…`) or, for browsers, the
HttpOnly session cookie; cookie-authenticated writes must echo the CSRF cookie in
`X-CSRF-Token`. Access tokens are verified locally (`heron_common.security.identity`); API
tokens are exchanged once with the auth service for a short-lived access token, cached by the
hash of the whole API token.
"""

from __future__ import annotations

from typing import Annotated

from cms.auth.v1 import auth_pb2 as auth_pb
from fastapi import Depends, Request
from heron_common.errors import PermissionDenied, Unauthenticated, authentication_required
from heron_common.rpc.client import call
from heron_common.security.authz import AUTHENTICATED, PUBLIC, deny
from heron_common.security.identity import CSRF_MISMATCH, bearer_token, csrf_matches, token_digest
from heron_common.security.permissions import Principal
from starlette.types import Scope

from heron_gateway.middleware import PRINCIPAL_KEY
from heron_gateway.upstreams import Upstreams

# SonicJS's cookie names for the access and CSRF tokens; the refresh token is Heron's own,
# sent only to /auth.
ACCESS_COOKIE = "auth_token"
REFRESH_COOKIE = "heron_refresh"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "x-csrf-token"
API_TOKEN_PREFIX = "heron_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _from_api_token(upstreams: Upstreams, token: str) -> Principal:
    digest = token_digest(token)
    access = upstreams.api_tokens.get(digest)
    if access is not None:
        try:
            return await upstreams.authenticator.verify(access)
        except Unauthenticated:  # revoked or expired: the token itself may still be good
            upstreams.api_tokens.drop(digest)
    reply = await call(
        upstreams.auth.ExchangeApiToken,
        auth_pb.ExchangeApiTokenRequest(token=token),
        timeout=upstreams.settings.rpc_timeout_seconds,
    )
    upstreams.api_tokens.put(digest, reply.access_token, reply.expires_in)
    return await upstreams.authenticator.verify(reply.access_token)


def _check_csrf(request: Request, principal: Principal) -> None:
    """A cookie-authenticated write must carry its session's own CSRF token (not merely one
    equal to a cookie, which a sibling site could plant)."""
    if not csrf_matches(principal.csrf_hash, request.headers.get(CSRF_HEADER, "")):
        raise PermissionDenied(CSRF_MISMATCH)


async def authenticate(request: Request, upstreams: Upstreams, *, csrf: bool = True) -> Principal:
    """The caller's principal; anonymous without credentials, 401 for bad ones. `csrf`: a
    cookie-authenticated write must carry the session's CSRF token."""
    authorization = request.headers.get("authorization")
    cookie = None if authorization is not None else request.cookies.get(ACCESS_COOKIE)
    principal = await principal_of(upstreams, authorization, cookie)
    if cookie and csrf and request.method not in SAFE_METHODS:
        _check_csrf(request, principal)
    return principal


async def principal_of(
    upstreams: Upstreams, authorization: str | None, access_cookie: str | None
) -> Principal:
    """Who the credentials name: the `Authorization` header if sent, else the session cookie,
    else anonymous; 401 for bad ones (no CSRF check: see `authenticate`)."""
    authenticator = upstreams.authenticator
    if authorization is not None:
        token = bearer_token(authorization)
        if not token:
            raise Unauthenticated("Send credentials as `Authorization: Bearer <token>`.")
        if token.startswith(API_TOKEN_PREFIX):
            return await _from_api_token(upstreams, token)
        return await authenticator.verify(token)
    if access_cookie:
        return await authenticator.verify(access_cookie)
    return authenticator.anonymous()


def remember_principal(scope: Scope, principal: Principal) -> None:
    """Record the request's verified principal: for the route's `Access` (which then does not
    verify the token again) and for the access log (`principal`, a cache hit's too)."""
    scope.setdefault("state", {})[PRINCIPAL_KEY] = principal


# Liveness and readiness: credentials are not even looked at.
OPEN = "open"
PLUGIN = "plugin"
"""A plugin route's: the permission its manifest declares, known only once the route is
found, is checked by the route itself (routes/plugins.py)."""


class Access:
    """A route's declared access: a permission string, `AUTHENTICATED`, `PUBLIC` (anyone; a
    principal if credentials are sent, which must then be valid) or `OPEN`.

    Returns the principal; denies with 401 (anonymous: signing in may help) or 403.
    A permission held only for one's own things (`content.update:own`) passes here; the
    service checks ownership.
    """

    def __init__(self, need: str, *, csrf: bool = True, lenient: bool = False) -> None:
        self.need = need
        self.csrf = csrf
        # Bad credentials make the caller anonymous instead of a 401 (signing out).
        self.lenient = lenient

    def __repr__(self) -> str:
        return f"Access({self.need!r})"

    async def __call__(self, request: Request) -> Principal | None:
        if self.need == OPEN:
            return None
        # Verified once per request: the page cache may have done it already.
        principal: Principal | None = getattr(request.state, PRINCIPAL_KEY, None)
        if principal is None:
            upstreams: Upstreams = request.app.state.upstreams
            try:
                principal = await authenticate(request, upstreams, csrf=self.csrf)
            except Unauthenticated:
                if not self.lenient:
                    raise
                principal = upstreams.authenticator.anonymous()
            remember_principal(request.scope, principal)
        if self.need in (PUBLIC, PLUGIN):
            return principal
        if self.need == AUTHENTICATED:
            if principal.anonymous:
                raise authentication_required()
            return principal
        if not principal.may(self.need):
            raise deny(principal, f"this needs the `{self.need}` permission.")
        return principal


Public = Annotated[Principal, Depends(Access(PUBLIC))]
SignedIn = Annotated[Principal, Depends(Access(AUTHENTICATED))]
# Signing out is the one cookie-authenticated write without a CSRF token, as in SonicJS: the
# worst a forged one could do is end a session, and SameSite=Strict cookies are not sent by
# another site's requests anyway. A revoked or expired token still signs out (and clears the
# cookies) rather than being refused.
SigningOut = Annotated[Principal, Depends(Access(PUBLIC, csrf=False, lenient=True))]
