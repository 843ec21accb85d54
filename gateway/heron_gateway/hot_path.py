"""The hot path: a GET whose page is in memory is answered here, in front of the middleware.

A cache hit through the whole chain paid for seven layers, each wrapping `send` in a closure
of its own to add its headers, for an answer that is already bytes. This layer answers it with
one header list instead: the stored page's headers, the cache's, the security headers, the
request id, in the order the chain would have put them, and the same access log line.

Anything else goes through the chain untouched: a miss, a HEAD, a URL the hygiene layer would
change or refuse, a cross-origin request when CORS is on (its headers are the CORS layer's), a
request that asks the caches to step aside (`Cache-Control: no-cache`), and credentials that
do not verify (the route renders that error).
"""

from __future__ import annotations

import time

from heron_common.context import clean_request_id, request_id_var
from starlette.types import ASGIApp, Receive, Scope, Send

from heron_gateway.middleware import (
    FILES_PREFIX,
    RawHeaders,
    access_logger,
    log_request,
    url_is_clean,
)
from heron_gateway.observability import RouteNames
from heron_gateway.response_cache import HOT_PREFIXES, ResponseCacheMiddleware, send_page


class HotPathMiddleware:
    """`app` is the whole chain; `pages` its page cache layer; `security_headers` what the
    security layer adds to API answers, `file_headers` what it adds to files; `cors` whether a
    CORS layer is in the chain."""

    def __init__(
        self,
        app: ASGIApp,
        pages: ResponseCacheMiddleware,
        security_headers: RawHeaders,
        *,
        cors: bool,
        file_headers: RawHeaders,
        routes: RouteNames,
    ) -> None:
        self.app = app
        self.route_names = routes
        self.pages = pages
        self.security_headers = security_headers
        self.file_headers = file_headers
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(HOT_PREFIXES)
            and url_is_clean(scope["path"], scope.get("query_string", b""))
            and await self._answer(scope, send)
        ):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        started = time.perf_counter()
        seen: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # the headers this path reads, in one pass
            if name in _READ and name not in seen:
                seen[name] = value
        if self.cors and b"origin" in seen:
            return False
        file = scope["path"].startswith(FILES_PREFIX)
        if file and b"range" in seen:  # a part of a file: its route answers
            return False
        raw = seen.get(b"x-request-id")
        request_id = clean_request_id(raw.decode("latin-1") if raw else None)
        token = request_id_var.set(request_id)
        try:
            try:
                found = await self.pages.cached(
                    scope,
                    seen.get(b"authorization"),
                    seen.get(b"cookie"),
                    seen.get(b"cache-control"),
                )
            except Exception:  # a bug: the chain answers (and reports) it
                access_logger.exception("cache lookup failed")
                return False
            if found is None:
                return False
            page, hit, principal = found
            security = self.file_headers if file else self.security_headers
            trailer = [*security, (b"x-request-id", request_id.encode())]
            status = await send_page(
                scope,
                send,
                page,
                hit.headers(),
                principal.anonymous,
                trailer,
                match=seen.get(b"if-none-match"),
            )
            route = self.route_names.of("GET", scope["path"])
            log_request(scope, status, started, principal, route)
            return True
        finally:
            request_id_var.reset(token)


_READ = frozenset(
    {
        b"x-request-id",
        b"origin",
        b"authorization",
        b"cookie",
        b"cache-control",
        b"if-none-match",
        b"range",
    }
)
