"""Pure ASGI middleware: request id, access log, security headers, body size limit, URL
hygiene.

Each is a small class holding only configuration; per-request state lives in locals and the
request-id context variable, never on `self`.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from heron_common.context import clean_request_id, request_id_var
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heron_gateway.errors import error_body
from heron_gateway.observability import HTTP_METRICS, ROUTE_KEY, RouteNames

access_logger = logging.getLogger("heron.access")

RawHeaders = list[tuple[bytes, bytes]]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header, by its lowercase name."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    headers: RawHeaders | None = None,
    details: list[dict[str, Any]] | None = None,
) -> None:
    """Answer the request of `scope` with the one error body, from middleware (before any
    route runs)."""
    body = error_body(status, message, details, path=scope.get("path", ""))
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class RequestIdMiddleware:
    """Accepts the caller's `X-Request-Id` (or makes one), binds it, and echoes it back.

    Being outermost, it also turns an error no inner layer handled into the one JSON error
    body (a 500 without internals) instead of the server's plain-text answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = header(scope, b"x-request-id")
        request_id = clean_request_id(raw.decode("latin-1") if raw else None)
        token = request_id_var.set(request_id)
        encoded = request_id.encode()
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", encoded)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:  # too late for another answer: let the server close the connection
                raise
            access_logger.error("unhandled error", exc_info=True)
            await send_error(scope, send_with_id, 500, "Internal error.")
        finally:
            request_id_var.reset(token)


class AccessLogMiddleware:
    """One JSON line per request: method, path (never the query string), route template,
    status, duration; and the request in the HTTP metrics."""

    def __init__(self, app: ASGIApp, routes: RouteNames) -> None:
        self.app = app
        self.route_names = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # One state for the whole request: the middleware below copy the scope (HEAD as GET,
        # canonical paths), and whoever learns the principal records it here.
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = state.get(ROUTE_KEY) or self.route_names.of(scope["method"], scope["path"])
            log_request(scope, status, started, state.get(PRINCIPAL_KEY), route)


def log_request(scope: Scope, status: int, started: float, principal: Any, route: str) -> None:
    """Count a request answered with `status` (`route`: the template it matched) in the HTTP
    metrics, and write its access log line (when INFO is on)."""
    seconds = time.perf_counter() - started
    method = scope["method"]
    HTTP_METRICS.observe(method, route, status, seconds)
    if access_logger.isEnabledFor(logging.INFO):
        client = scope.get("client")
        access_logger.info(
            "request",
            extra={
                "method": method,
                "path": redact_path(scope["path"]),
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
                "principal": _principal_name(principal),
            },
        )


# Where the request's verified principal is kept (security.remember_principal) for the route
# and the access log alike.
PRINCIPAL_KEY = "heron_principal"


def _principal_name(principal: Any) -> str:
    return getattr(principal, "user_id", "") or "anonymous"


_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_FILE_CSP = b"sandbox; default-src 'none'; frame-ancestors 'none'"
FILES_PREFIX = "/files/"
# The interactive docs page: Swagger UI from the gateway itself (routes/docs.py), nothing
# from another origin, no inline script. Its components set inline styles.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)

# The admin's pages (heron_gateway.admin_ui): scripts, styles and images from the gateway only,
# no inline script or style, forms posting to the gateway only, never in a frame.
_ADMIN_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ADMIN_PREFIX = "/admin"


class SecurityHeadersMiddleware:
    """Adds the standard hardening headers to every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False, docs_prefix: str = "/docs") -> None:
        self.app = app
        self.docs_prefix = docs_prefix
        common: RawHeaders = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if hsts:
            common.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        self.api_headers = [*common, (b"content-security-policy", _API_CSP)]
        self.docs_headers = [*common, (b"content-security-policy", _DOCS_CSP)]
        self.admin_headers = [*common, (b"content-security-policy", _ADMIN_CSP)]
        # Uploaded files: embeddable from other origins (a site showing its images), and
        # sandboxed, so that even one a browser renders in place runs nothing.
        self.file_headers = [
            *(h for h in common if h[0] != b"cross-origin-resource-policy"),
            (b"cross-origin-resource-policy", b"cross-origin"),
            (b"content-security-policy", _FILE_CSP),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        docs = path == self.docs_prefix or path.startswith(self.docs_prefix + "/")
        if docs:
            extra = self.docs_headers
        elif path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            extra = self.admin_headers
        elif path.startswith(FILES_PREFIX):
            extra = self.file_headers
        else:
            extra = self.api_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Rejects request bodies over `max_bytes` with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths (and what is under them) that hold bodies to limits of their own (uploads).
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or (self.exempt and scope["path"].startswith(self.exempt))
        ):
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app's body read, so its error handler renders the 413.
                    raise HTTPException(413, detail=self._message)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def _message(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def _reject(self, scope: Scope, send: Send) -> None:
        await send_error(scope, send, 413, self._message)


_CREDENTIAL_PARAMS = frozenset(
    {
        "access_token",
        "token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "api_token",
        "jwt",
        "auth",
        "authorization",
        "bearer",
    }
)
_JWT_IN_VALUE = re.compile(rb"(?:^|=)eyJ[\w-]+\.[\w-]+\.[\w-]+(?:&|$)")
# What Heron's credentials look like: API tokens, refresh tokens, JWTs.
CREDENTIAL_IN_PATH = re.compile(r"heron_[\w-]{16,}|hrt_[\w-]{16,}|eyJ[\w-]+\.[\w-]+\.[\w-]*")


def redact_path(path: str) -> str:
    """The path as logged: anything shaped like a credential is replaced."""
    if "heron_" in path or "hrt_" in path or "eyJ" in path:
        return CREDENTIAL_IN_PATH.sub("[redacted]", path)
    return path


class UrlHygieneMiddleware:
    """Canonical paths for routing, and no credentials in URLs.

    Repeated and trailing slashes are dropped, and `/auth/…` is matched case-insensitively, so
    `/AUTH/LOGIN/` is the login route (and counts against its rate limits) instead of a way
    around them. A URL carrying a token (`?access_token=`, `?api_key=`, a JWT as a value) is
    refused with 401: URLs end up in logs, histories and Referer headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if _needs_canonical(path):
            canonical = "/" + "/".join(p for p in path.split("/") if p)
            if canonical[:6].lower() == "/auth/":
                canonical = canonical.lower()
            if canonical != path:
                scope = {**scope, "path": canonical, "raw_path": canonical.encode()}
        query: bytes = scope.get("query_string", b"")
        carries = query and _carries_credentials(query) and scope["path"] != MAGIC_LINK_VERIFY
        if carries or redact_path(path) != path:
            await send_error(
                scope,
                send,
                401,
                "Credentials are not accepted in the URL; send them in the Authorization header.",
                [(b"www-authenticate", b'Bearer realm="heron"')],
            )
            return
        await self.app(scope, receive, send)


def _needs_canonical(path: str) -> bool:
    return "//" in path or (path.endswith("/") and path != "/") or path[:6].lower() == "/auth/"


MAGIC_LINK_VERIFY = "/auth/magic-link/verify"
"""The one route that takes a credential in its URL: the mailed link's single-use token (kept
out of every log line: the access log has the path only)."""

_SHORT_URL = 512
T = TypeVar("T")


def remembered_for_short_urls(
    function: Callable[[str, bytes], T],
) -> Callable[[str, bytes], T]:
    """`function(path, query)` remembered for URLs whose path and query are each at most 512
    bytes (4,096 of them: callers choose URLs, so neither the entries nor their size may grow
    without bound); longer ones are computed each time."""
    remembered = functools.lru_cache(maxsize=4096)(function)

    @functools.wraps(function)
    def call(path: str, query: bytes) -> T:
        if len(path) <= _SHORT_URL and len(query) <= _SHORT_URL:
            return remembered(path, query)
        return function(path, query)

    return call


@remembered_for_short_urls
def url_is_clean(path: str, query: bytes) -> bool:
    """The URL is already canonical and carries no credentials: UrlHygieneMiddleware would
    pass it through unchanged."""
    return (
        not _needs_canonical(path)
        and not (query and _carries_credentials(query))
        and redact_path(path) == path
    )


def _carries_credentials(query: bytes) -> bool:
    for pair in query.split(b"&"):
        name = unquote_to_bytes(pair.split(b"=", 1)[0]).decode("latin-1").strip().lower()
        if name in _CREDENTIAL_PARAMS:
            return True
    return _JWT_IN_VALUE.search(unquote_to_bytes(query)) is not None
