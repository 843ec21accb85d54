"""Passwordless sign-in at SonicJS's paths: an email code (`/auth/otp/…`, the `otp-login`
plugin) and a magic link (`/auth/magic-link/…`, the `magic-link-auth` plugin).

The plugin checks the code or link; once it says the address is proved, the auth service
signs the account in here, exactly as a password sign-in does (the same session, cookies and
`auth:afterLogin`). Both answer 404 until their plugin is active.
"""

from __future__ import annotations

from typing import Any

import orjson
from cms.auth.v1 import auth_pb2 as pb
from fastapi import APIRouter, Request
from heron_common.errors import ErrorDetail, NotFound
from heron_common.rpc.client import call
from heron_common.security.authz import INTERNAL_METADATA_KEY
from starlette.responses import RedirectResponse, Response

from heron_gateway.middleware import MAGIC_LINK_VERIFY
from heron_gateway.render import json_response
from heron_gateway.routes.auth import _session_body, client_metadata, set_session_cookies
from heron_gateway.routes.plugins import forward_to_plugin, plugin_response
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    OtpVerifyBody,
    PasswordlessRequestBody,
    PasswordlessSent,
    SessionOut,
)
from heron_gateway.security import Public
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

OTP, LINK = "otp-login", "magic-link-auth"

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


def _active(upstreams: Any, plugin: str, method: str, path: str) -> None:
    if not any(
        r.plugin == plugin and r.method == method and r.path == path
        for r in upstreams.active_plugins.routes
    ):
        raise NotFound(
            "This way of signing in is off; an administrator activates the "
            f"{plugin} plugin (and the email plugin).",
            [ErrorDetail("path", plugin)],
        )


async def _sign_in(
    request: Request, upstreams: Any, settings: Any, answer: dict[str, Any]
) -> pb.Session:
    session: pb.Session = await call(
        upstreams.auth.SignInVerified,
        pb.SignInVerifiedRequest(email=answer["email"], method=answer["method"]),
        timeout=settings.rpc_timeout_seconds,
        metadata=(
            (INTERNAL_METADATA_KEY, settings.internal_secret),
            *client_metadata(request, settings),
        ),
    )
    return session


async def _ask(
    plugin: str, path: str, request: Request, upstreams: Any, settings: Any, principal: Any
) -> Any:
    _active(upstreams, plugin, request.method, path)
    return await forward_to_plugin(plugin, path, request, upstreams, settings, principal)


@router.post("/auth/otp/request", response_model=PasswordlessSent, summary="Mail a sign-in code")
async def otp_request(
    body: PasswordlessRequestBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Public,
) -> Response:
    """A code for the address, mailed if it is an active account's; the answer is the same
    either way (`expiresIn` in seconds). Limited per address and per client (`429`)."""
    return plugin_response(await _ask(OTP, "/request", request, upstreams, settings, principal))


@router.post("/auth/otp/resend", response_model=PasswordlessSent, summary="Mail a new sign-in code")
async def otp_resend(
    body: PasswordlessRequestBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Public,
) -> Response:
    """As `/auth/otp/request`: a new code replaces the one sent before."""
    return plugin_response(await _ask(OTP, "/resend", request, upstreams, settings, principal))


@router.post("/auth/otp/verify", response_model=SessionOut, summary="Sign in with a code")
async def otp_verify(
    body: OtpVerifyBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Public,
) -> Response:
    """The mailed code in; a session (tokens and cookies) out, as `/auth/login` gives. A code
    works once, expires, and dies after its wrong tries (`401` for all of these)."""
    reply = await _ask(OTP, "/verify", request, upstreams, settings, principal)
    if reply.status != 200:
        return plugin_response(reply)
    session = await _sign_in(request, upstreams, settings, orjson.loads(reply.body))
    response = json_response(_session_body(session))
    set_session_cookies(response, settings, session)
    return response


@router.post(
    "/auth/magic-link/request", response_model=PasswordlessSent, summary="Mail a sign-in link"
)
async def magic_link_request(
    body: PasswordlessRequestBody,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Public,
) -> Response:
    """A single-use link for the address, mailed if it is an active account's; the answer is
    the same either way."""
    return plugin_response(await _ask(LINK, "/request", request, upstreams, settings, principal))


@router.get(
    MAGIC_LINK_VERIFY,
    status_code=302,
    summary="Sign in with a mailed link",
    responses={302: {"description": "To the configured page, signed in or with ?error=…"}},
)
async def magic_link_verify(
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Public,
    token: str = "",
) -> Response:
    """Opened from the mail: signs in (session cookies) and redirects to the configured page;
    a bad, used or expired link redirects to the sign-in page with `?error=…`."""
    reply = await _ask(LINK, "/verify", request, upstreams, settings, principal)
    try:
        answer = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return plugin_response(reply)
    if reply.status != 200:
        if "redirect" in answer:
            return RedirectResponse(answer["redirect"], status_code=302)
        return plugin_response(reply)
    session = await _sign_in(request, upstreams, settings, answer)
    response = RedirectResponse(answer["redirect"], status_code=302)
    set_session_cookies(response, settings, session)
    # The page it lands on must not pass the link on (Referer) or keep it cached.
    response.headers["referrer-policy"] = "no-referrer"
    response.headers["cache-control"] = "no-store"
    return response
