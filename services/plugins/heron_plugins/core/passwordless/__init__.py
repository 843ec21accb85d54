"""Passwordless sign-in: a code mailed to the account's address (`otp-login`), or a link
(`magic-link-auth`). Both need the `email` plugin, and both are off until activated.

The gateway serves them at SonicJS's paths (`/auth/otp/request|verify|resend`,
`/auth/magic-link/request|verify`) and, once a plugin says the address is proved, signs the
account in through the auth service like a password sign-in (same session rules, cookies and
`auth:afterLogin`). A request answers the same whether or not the address is an account's: the
code or link is made either way, and mailed only to an active account.

Codes are `secrets`-random digits, links 256-bit random tokens; only their hashes are stored,
each works once, expires, and a code dies after `max_attempts` wrong tries. Requests are
limited per address and per client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from cms.auth.v1 import auth_pb2
from heron_common.emails import normalize_email
from heron_common.errors import DomainError, ErrorDetail, InvalidArgument
from heron_common.ids import now_ms
from heron_common.redis.client import create_redis
from heron_common.redis.ratelimit import RateLimiter
from heron_common.rpc.client import call
from heron_common.rpc.peers import forwarded_client
from heron_common.security.authz import INTERNAL_METADATA_KEY
from sqlalchemy import delete, select, update

from heron_plugins.core import email
from heron_plugins.core.passwordless.models import codes, links
from heron_plugins.manifest import Manifest, PluginContext, PluginRequest, PluginResponse, Route

HERE = Path(__file__).resolve().parent
CODE = re.compile(r"\d{4,8}")
OTP_DEFAULTS: dict[str, Any] = {
    "code_length": 6,
    "expires_seconds": 600,
    "max_attempts": 5,
    "requests_per_email": 5,
    "requests_per_ip": 30,
    "rate_window_seconds": 900,
}
LINK_DEFAULTS: dict[str, Any] = {
    "expires_seconds": 900,
    "link_base_url": "http://127.0.0.1:8000",
    "redirect_url": "/admin",
    "sign_in_url": "/auth/login",
    "requests_per_email": 5,
    "requests_per_ip": 30,
    "rate_window_seconds": 900,
}
OTP_MESSAGE = "If an account exists, a verification code has been sent"
LINK_MESSAGE = "If an account exists, a magic link has been sent"


class _Plugin:
    """What one of the two plugins holds while active."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.context: PluginContext | None = None
        self.limiter: RateLimiter | None = None

    async def start(self, context: PluginContext) -> None:
        redis_url = getattr(context.service_settings, "redis_url", "")
        self.limiter = RateLimiter(create_redis(redis_url) if redis_url else None)
        self.context = context

    async def stop(self) -> None:
        limiter, self.limiter, self.context = self.limiter, None, None
        if limiter is not None:
            await limiter.aclose()

    async def settings(self) -> dict[str, Any]:
        assert self.context is not None
        return {**self.defaults, **(await self.context.settings())}

    def secret(self) -> str:
        assert self.context is not None
        return str(getattr(self.context.service_settings, "internal_secret", ""))

    def internal(self, request: PluginRequest) -> tuple[tuple[str, str], ...]:
        """Metadata of a call to the auth service as Heron itself, for this client."""
        return (
            (INTERNAL_METADATA_KEY, self.secret()),
            *forwarded_client(request.client_address, self.secret()),
        )

    async def active_account(self, request: PluginRequest, address: str) -> bool:
        assert self.context is not None
        reply = await call(
            self.context.auth.CheckAccount,
            auth_pb2.CheckAccountRequest(email=address),
            timeout=5.0,
            metadata=self.internal(request),
        )
        return bool(reply.active)

    async def limit(self, request: PluginRequest, kind: str, key: str) -> PluginResponse | None:
        """429 with `Retry-After` when this address or client asked too often; else None."""
        assert self.limiter is not None
        settings = await self.settings()
        window = int(settings["rate_window_seconds"])
        for scope, subject, limit in (
            ("email", key, int(settings["requests_per_email"])),
            ("ip", request.client_address, int(settings["requests_per_ip"])),
        ):
            decision = await self.limiter.hit(
                f"{kind}:{scope}:{subject}", limit=limit, window_seconds=window
            )
            if not decision.allowed:
                body = {
                    "error": f"Too many requests; retry in {decision.retry_after} seconds.",
                    "code": "rate_limited",
                }
                return PluginResponse(429, orjson.dumps(body), headers=decision.headers())
        return None


_otp = _Plugin(OTP_DEFAULTS)
_link = _Plugin(LINK_DEFAULTS)


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> PluginResponse:
    return PluginResponse(status, orjson.dumps(value), headers=headers or {})


def _invalid(exc: InvalidArgument) -> PluginResponse:
    return _json(400, {"error": exc.message, "details": [d.to_dict() for d in exc.details]})


def _fields(request: PluginRequest, *names: str) -> dict[str, str]:
    """The JSON body's string fields; `Validation failed` naming the first missing or wrong."""
    try:
        body = request.json()
    except orjson.JSONDecodeError:
        raise InvalidArgument("Validation failed: the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("Validation failed: the body must be a JSON object")
    found = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str):
            raise InvalidArgument(
                f"Validation failed: {name} is required", [ErrorDetail(name, "required")]
            )
        found[name] = value
    return found


def _code_hash(secret: str, key: str, code: str) -> str:
    # Keyed: six digits are too few to keep a leaked table's codes secret by hashing alone.
    return hmac.new(secret.encode(), f"{key}\n{code}".encode(), hashlib.sha256).hexdigest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unavailable() -> PluginResponse:
    return _json(503, {"error": "Passwordless sign-in is starting; retry shortly."})


# -- email code ------------------------------------------------------------------------------


async def otp_request(request: PluginRequest) -> PluginResponse:
    plugin = _otp
    if plugin.context is None:
        return _unavailable()
    address, key = normalize_email(_fields(request, "email")["email"])
    if (refused := await plugin.limit(request, "otp", key)) is not None:
        return refused
    settings = await plugin.settings()
    length = int(settings["code_length"])
    code = f"{secrets.randbelow(10**length):0{length}d}"
    now = now_ms()
    expires_in = int(settings["expires_seconds"])
    active = await plugin.active_account(request, address)
    # The same work whether or not the address is an account's: only the mail differs.
    async with plugin.context.database.transaction() as conn:
        await conn.execute(delete(codes).where(codes.c.email_key == key))
        await conn.execute(
            codes.insert(),
            {
                "email_key": key,
                "code_hash": _code_hash(plugin.secret(), key, code),
                "attempts": 0,
                "expires_at": now + expires_in * 1000,
                "created_at": now,
            },
        )
    if active:
        await email.send(address, "otp", {"code": code, "minutes": max(1, expires_in // 60)})
    return _json(200, {"message": OTP_MESSAGE, "expiresIn": expires_in})


async def otp_verify(request: PluginRequest) -> PluginResponse:
    """200 `{"email", "method"}` when the code is the live one of the address (it is used
    up); 401 otherwise. The gateway then signs the account in."""
    plugin = _otp
    if plugin.context is None:
        return _unavailable()
    fields = _fields(request, "email", "code")
    address, key = normalize_email(fields["email"])
    code = fields["code"].strip()
    if not CODE.fullmatch(code):
        return _json(
            400,
            {
                "error": "Validation failed: the code is 4 to 8 digits",
                "details": [{"field": "code", "message": "4 to 8 digits"}],
            },
        )
    settings = await plugin.settings()
    now = now_ms()
    wrong = _json(401, {"error": "Invalid or expired code"})
    async with plugin.context.database.transaction() as conn:
        row = (await conn.execute(select(codes).where(codes.c.email_key == key))).first()
        if row is None:
            return wrong
        if row.expires_at <= now or row.attempts >= int(settings["max_attempts"]):
            await conn.execute(delete(codes).where(codes.c.email_key == key))
            return wrong
        if not hmac.compare_digest(row.code_hash, _code_hash(plugin.secret(), key, code)):
            await conn.execute(
                update(codes).where(codes.c.email_key == key).values(attempts=codes.c.attempts + 1)
            )
            return wrong
        # Used up: only one request can delete it, so a code signs in once.
        used = await conn.execute(
            delete(codes).where(codes.c.email_key == key, codes.c.code_hash == row.code_hash)
        )
        if used.rowcount != 1:
            return wrong
    return _json(200, {"email": address, "method": "otp"})


# -- magic link ------------------------------------------------------------------------------


async def link_request(request: PluginRequest) -> PluginResponse:
    plugin = _link
    if plugin.context is None:
        return _unavailable()
    address, key = normalize_email(_fields(request, "email")["email"])
    if (refused := await plugin.limit(request, "magic-link", key)) is not None:
        return refused
    settings = await plugin.settings()
    token = "hml_" + secrets.token_urlsafe(32)
    now = now_ms()
    expires_in = int(settings["expires_seconds"])
    active = await plugin.active_account(request, address)
    async with plugin.context.database.transaction() as conn:
        await conn.execute(delete(links).where(links.c.expires_at < now - 86_400_000))
        await conn.execute(
            links.insert(),
            {
                "token_hash": _token_hash(token),
                "email": address,
                "expires_at": now + expires_in * 1000,
                "used_at": None,
                "created_at": now,
            },
        )
    if active:
        base = str(settings["link_base_url"]).rstrip("/")
        link = f"{base}/auth/magic-link/verify?{urlencode({'token': token})}"
        await email.send(address, "magic-link", {"link": link, "minutes": max(1, expires_in // 60)})
    return _json(200, {"message": LINK_MESSAGE, "expiresIn": expires_in})


def _failed_link(settings: dict[str, Any], reason: str) -> PluginResponse:
    target = str(settings["sign_in_url"])
    joiner = "&" if "?" in target else "?"
    redirect = f"{target}{joiner}{urlencode({'error': reason})}"
    return _json(401, {"error": reason, "redirect": redirect})


async def link_verify(request: PluginRequest) -> PluginResponse:
    """200 `{"email", "method", "redirect"}` for a live link (it is used up); 401 with the
    sign-in page to send the browser to (`?error=invalid|used|expired`) otherwise."""
    plugin = _link
    if plugin.context is None:
        return _unavailable()
    settings = await plugin.settings()
    token = (request.query.get("token") or [""])[0]
    if not token.startswith("hml_") or len(token) > 100:
        return _failed_link(settings, "invalid")
    now = now_ms()
    hashed = _token_hash(token)
    async with plugin.context.database.transaction() as conn:
        row = (await conn.execute(select(links).where(links.c.token_hash == hashed))).first()
        if row is None:
            return _failed_link(settings, "invalid")
        if row.used_at is not None:
            return _failed_link(settings, "used")
        if row.expires_at <= now:
            return _failed_link(settings, "expired")
        used = await conn.execute(
            update(links)
            .where(links.c.token_hash == hashed, links.c.used_at.is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:
            return _failed_link(settings, "used")
    return _json(
        200, {"email": row.email, "method": "magic-link", "redirect": settings["redirect_url"]}
    )


async def _guarded(handler: Any, request: PluginRequest) -> PluginResponse:
    try:
        result: PluginResponse = await handler(request)
    except email.NotRunning:
        return _json(503, {"error": "Email is off: an administrator activates the email plugin."})
    except InvalidArgument as exc:  # the request's own fields: each named in `details`
        return _invalid(exc)
    except DomainError as exc:
        return _json(exc.http_status, {"error": exc.message})
    return result


def _route(method: Any, path: str, handler: Any) -> Route:
    async def guarded(request: PluginRequest) -> PluginResponse:
        return await _guarded(handler, request)

    return Route(method=method, path=path, permission="public", handler=guarded)


def _limits(defaults: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests_per_email": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": defaults["requests_per_email"],
            "description": "Requests per address per window.",
        },
        "requests_per_ip": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
            "default": defaults["requests_per_ip"],
            "description": "Requests per client address per window.",
        },
        "rate_window_seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 86400,
            "default": defaults["rate_window_seconds"],
        },
    }


otp_login = Manifest(
    name="otp-login",
    version="1.0.0",
    description="Sign in with a code mailed to the account's address "
    "(/auth/otp/request, /auth/otp/verify, /auth/otp/resend).",
    author="Heron",
    dependencies={"email": ">=1.0"},
    migrations=HERE / "otp_migrations",
    start=_otp.start,
    stop=_otp.stop,
    routes=(
        _route("POST", "/request", otp_request),
        _route("POST", "/resend", otp_request),
        _route("POST", "/verify", otp_verify),
    ),
    settings_schema={
        "type": "object",
        "properties": {
            "code_length": {"type": "integer", "minimum": 4, "maximum": 8, "default": 6},
            "expires_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 600},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
            **_limits(OTP_DEFAULTS),
        },
        "additionalProperties": False,
    },
)

magic_link = Manifest(
    name="magic-link-auth",
    version="1.0.0",
    description="Sign in with a single-use link mailed to the account's address "
    "(/auth/magic-link/request, /auth/magic-link/verify).",
    author="Heron",
    dependencies={"email": ">=1.0"},
    migrations=HERE / "link_migrations",
    start=_link.start,
    stop=_link.stop,
    routes=(
        _route("POST", "/request", link_request),
        _route("GET", "/verify", link_verify),
    ),
    settings_schema={
        "type": "object",
        "properties": {
            "expires_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 900},
            "link_base_url": {
                "type": "string",
                "default": LINK_DEFAULTS["link_base_url"],
                "description": "The gateway's public address, which the mailed link starts with.",
            },
            "redirect_url": {
                "type": "string",
                "default": LINK_DEFAULTS["redirect_url"],
                "description": "Where a signed-in browser is sent.",
            },
            "sign_in_url": {
                "type": "string",
                "default": LINK_DEFAULTS["sign_in_url"],
                "description": "Where a bad, used or expired link sends the browser "
                "(with ?error=invalid|used|expired).",
            },
            **_limits(LINK_DEFAULTS),
        },
        "additionalProperties": False,
    },
)
