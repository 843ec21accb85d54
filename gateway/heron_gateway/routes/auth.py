"""Sign-in and the caller's own account: register, login, refresh, logout, me, password;
the published signing keys.

SonicJS's contract: login answers `{user, token, refresh_token}`, register `201 {user, token}`,
the access token travels in the `auth_token` cookie (and the CSRF token in `csrf_token`),
logout answers `{"message": "Logged out successfully"}`, and `GET /auth/logout` redirects to
the sign-in page.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from cms.auth.v1 import auth_pb2 as pb
from fastapi import APIRouter, Depends, Query, Request
from heron_common.errors import Unauthenticated, authentication_required
from heron_common.redis.ratelimit import Decision, RateLimited
from heron_common.rpc.client import call
from heron_common.rpc.peers import forwarded_client
from heron_common.security.permissions import Principal
from starlette.responses import HTMLResponse, RedirectResponse, Response

from heron_gateway.render import json_response, user_json
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    JSON_ERROR_RESPONSES,
    LoggedOut,
    LoginBody,
    LogoutBody,
    MeEnvelope,
    MeUpdate,
    PasswordChange,
    RefreshBody,
    RegisterBody,
    SessionOut,
    Success,
    TokensOut,
    new_account,
    profile_changes,
)
from heron_gateway.security import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    OPEN,
    REFRESH_COOKIE,
    Access,
    Public,
    SignedIn,
    SigningOut,
)
from heron_gateway.settings import GatewaySettings
from heron_gateway.upstreams import SettingsDep, Upstreams, UpstreamsDep

LOGGED_OUT = "Logged out successfully"
# Credentials are not even looked at: a browser with a stale cookie still gets the page.
Open = Annotated[None, Depends(Access(OPEN))]

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)

REFRESH_COOKIE_PATH = "/auth"
REFRESH_COOKIE_MAX_AGE = 30 * 86400


def client_address(request: Request) -> str:
    # uvicorn has already replaced the peer with X-Forwarded-For when, and only when, the
    # peer is a trusted proxy (HERON_GATEWAY_FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def client_metadata(request: Request, settings: GatewaySettings) -> tuple[tuple[str, str], ...]:
    """Metadata vouching for the client's address, under which the auth service counts
    sign-in and password attempts."""
    return forwarded_client(client_address(request), settings.internal_secret)


async def _limit(upstreams: Upstreams, key: str, limit: int, window: int) -> Decision:
    decision = await upstreams.limiter.hit(key, limit=limit, window_seconds=window)
    if not decision.allowed:
        raise RateLimited(decision)
    return decision


def set_session_cookies(response: Response, settings: GatewaySettings, session: pb.Session) -> None:
    secure = settings.cookie_secure
    response.set_cookie(
        ACCESS_COOKIE,
        session.access_token,
        max_age=session.expires_in,
        path="/",
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        session.refresh_token,
        max_age=REFRESH_COOKIE_MAX_AGE,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    if session.csrf_token:  # a new session; a refresh keeps the session's token
        # Readable by the page's scripts, which echo it in X-CSRF-Token on writes.
        response.set_cookie(
            CSRF_COOKIE,
            session.csrf_token,
            max_age=REFRESH_COOKIE_MAX_AGE,
            path="/",
            httponly=False,
            secure=secure,
            samesite="strict",
        )


def clear_session_cookies(response: Response, settings: GatewaySettings) -> None:
    for name, path in (
        (ACCESS_COOKIE, "/"),
        (REFRESH_COOKIE, REFRESH_COOKIE_PATH),
        (CSRF_COOKIE, "/"),
    ):
        response.delete_cookie(name, path=path, secure=settings.cookie_secure, samesite="strict")


def _session_body(session: pb.Session) -> dict[str, Any]:
    return {
        "user": user_json(session.user),
        "token": session.access_token,
        "refresh_token": session.refresh_token,
        "expires_in": session.expires_in,
    }


def _session_response(
    body: dict[str, Any], session: pb.Session, settings: GatewaySettings, status: int = 200
) -> Response:
    """`body` as JSON, with the session's cookies for browsers."""
    response = json_response(body, status=status)
    set_session_cookies(response, settings, session)
    return response


@router.post("/auth/login", response_model=SessionOut, summary="Sign in")
async def login(
    body: LoginBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    _: Public,
) -> Response:
    """Email and password in; an access token, a refresh token and session cookies out.

    Attempts are limited per client address, and failures per account and address, growing
    with repeated failures (`429` with `Retry-After`; failed attempts answer with
    `RateLimit-*`). The auth service enforces the limits, however it is reached.
    """
    session = await call(
        upstreams.auth.Login,
        pb.LoginRequest(email=body.email, password=body.password),
        timeout=settings.rpc_timeout_seconds,
        metadata=client_metadata(request, settings),
    )
    return _session_response(_session_body(session), session, settings)


@router.post("/auth/register", response_model=SessionOut, status_code=201, summary="Register")
async def register(
    body: RegisterBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    _: Public,
) -> Response:
    """Create an account with the configured default role (`viewer`); off unless the operator
    enabled it (`HERON_AUTH_REGISTRATION_ENABLED`). The role is never the caller's choice; the
    username, when not given, comes from the email's local part. A taken email or username is
    `409` "… already exists"."""
    await _limit(
        upstreams, f"register:ip:{client_address(request)}", settings.register_attempts_per_ip, 3600
    )
    session = await call(
        upstreams.auth.Register,
        pb.RegisterRequest(**new_account(body)),
        timeout=settings.rpc_timeout_seconds,
    )
    return _session_response(_session_body(session), session, settings, status=201)


@router.post("/auth/refresh", response_model=TokensOut, summary="Refresh the access token")
async def refresh(
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    _: Public,
    body: RefreshBody | None = None,
) -> Response:
    """Trade a refresh token (body, or the session cookie) for a new access token and a new
    refresh token. Each refresh token works once; reusing one ends its whole session."""
    await _limit(
        upstreams, f"refresh:ip:{client_address(request)}", settings.refresh_attempts_per_ip, 60
    )
    token = body.refresh_token if body and body.refresh_token else None
    from_cookie = token is None
    if token is None:
        token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise authentication_required(
            'send the refresh token as {"refresh_token": ...}, or its session cookie'
        )
    # A cookie-borne refresh is checked against the session's own CSRF token, by the auth
    # service, which holds it.
    session = await call(
        upstreams.auth.Refresh,
        pb.RefreshRequest(
            refresh_token=token,
            from_cookie=from_cookie,
            csrf_token=request.headers.get(CSRF_HEADER, "") if from_cookie else "",
        ),
        timeout=settings.rpc_timeout_seconds,
    )
    tokens = {
        "token": session.access_token,
        "refresh_token": session.refresh_token,
        "expires_in": session.expires_in,
    }
    return _session_response(tokens, session, settings)


async def end_session(
    upstreams: Upstreams, settings: GatewaySettings, principal: Principal, token: str
) -> None:
    """End the session of `token` (a refresh token), or else of the caller's access token; with
    neither, or with credentials no longer valid, there is nothing to end, and that is not an
    error: the caller is signed out either way."""
    try:
        await call(
            upstreams.auth.Logout,
            pb.LogoutRequest(refresh_token=token),
            timeout=settings.rpc_timeout_seconds,
            metadata=principal.metadata(),
        )
    except Unauthenticated:
        pass


@router.post("/auth/logout", response_model=LoggedOut, summary="Sign out")
async def logout(
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: SigningOut,
    body: LogoutBody | None = None,
) -> Response:
    """End the session: of the given refresh token, or of the access token used. Its access
    tokens stop working within seconds everywhere; the session cookies are cleared."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE) or ""
    await end_session(upstreams, settings, principal, token)
    response = json_response({"message": LOGGED_OUT, "success": True})
    clear_session_cookies(response, settings)
    return response


@router.get(
    "/auth/logout",
    response_class=RedirectResponse,
    status_code=302,
    summary="Sign out (browsers)",
    responses={302: {"description": "To the sign-in page, with the cookies cleared."}},
)
async def logout_redirect(
    request: Request, upstreams: UpstreamsDep, settings: SettingsDep, principal: SigningOut
) -> Response:
    """For a link or a browser: ends the cookie session (the cookies are `SameSite=Strict`, so
    another site's link cannot), clears the cookies, and redirects to the sign-in page
    (`HERON_GATEWAY_SIGN_IN_URL`)."""
    await end_session(upstreams, settings, principal, request.cookies.get(REFRESH_COOKIE) or "")
    response = RedirectResponse(settings.sign_in_url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    clear_session_cookies(response, settings)
    return response


_SIGN_IN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - Heron</title></head>
<body>
<main>
<h1>Heron</h1>
{notice}<p>Sign in with <code>POST /auth/login</code> and a JSON body
<code>{{"email": "...", "password": "..."}}</code>; the API is described at
<a href="/docs">/docs</a>.</p>
</main>
</body>
</html>
"""


@router.get(
    "/auth/login",
    response_class=HTMLResponse,
    summary="The sign-in page",
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **JSON_ERROR_RESPONSES,
    },
)
async def sign_in_page(
    _: Open,
    message: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Where `GET /auth/logout` and refused browser visits land, showing SonicJS's `?message=`
    or `?error=` (escaped)."""
    notice = "".join(
        f'<p role="{role}">{html.escape(text)}</p>\n'
        for role, text in (("status", message), ("alert", error))
        if text
    )
    return HTMLResponse(_SIGN_IN_PAGE.format(notice=notice), headers={"Cache-Control": "no-store"})


@router.get("/auth/me", response_model=MeEnvelope, summary="The signed-in account")
async def me(upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn) -> Response:
    reply = await call(
        upstreams.auth.GetMe,
        pb.GetMeRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"user": _me_json(reply, principal)})


def _me_json(user: pb.User, principal: Principal) -> dict[str, Any]:
    body = user_json(user)
    # SonicJS's /auth/me names these in snake case; both spellings are here.
    body["first_name"], body["last_name"] = user.first_name, user.last_name
    body["permissions"] = sorted(principal.permissions)
    return body


@router.patch("/auth/me", response_model=MeEnvelope, summary="Change your profile")
async def update_me(
    body: MeUpdate, upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn
) -> Response:
    """Your names and username; role, status and email are for administrators."""
    request = pb.UpdateMeRequest(**profile_changes(body))
    reply = await call(
        upstreams.auth.UpdateMe,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"user": _me_json(reply, principal)})


@router.post("/auth/password", response_model=Success, summary="Change your password")
async def change_password(
    body: PasswordChange,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: SignedIn,
) -> Response:
    """Ends every session of the account, this one included: sign in again afterwards.
    Wrong current passwords are limited like sign-in (`429` with `Retry-After`)."""
    await call(
        upstreams.auth.ChangePassword,
        pb.ChangePasswordRequest(
            current_password=body.current_password, new_password=body.new_password
        ),
        timeout=settings.rpc_timeout_seconds,
        metadata=(*principal.metadata(), *client_metadata(request, settings)),
    )
    response = json_response({"success": True})
    clear_session_cookies(response, settings)
    return response


@router.get("/.well-known/jwks.json", summary="Public signing keys", tags=["auth"])
async def jwks(upstreams: UpstreamsDep, settings: SettingsDep, _: Public) -> Response:
    """The keys access tokens are signed with (JWKS), for verifying them elsewhere."""
    reply = await call(
        upstreams.auth.GetJwks, pb.GetJwksRequest(), timeout=settings.rpc_timeout_seconds
    )
    return Response(
        reply.jwks_json,
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=60"},
    )
