"""The gateway's page cache: cacheable GET answers stored as ready-to-send bytes.

A pure ASGI layer in front of the routes. The key is the normalized request plus the caller's
permission context (anonymous callers share one context; signed-in callers share entries only
with callers holding the same permissions, and per user when they may see only their own
drafts), so an answer is never served to someone who would get a different one. Entries are
tagged with what the service said the answer depends on (its cache tags, see
`heron_common.cache.tags`, passed on by the route), which the service's writes invalidate
after commit over the Redis bus; without Redis (one gateway, embedded) the gateway drops its
pages after each write it forwards. Answers carry `X-Cache-Status`, `X-Cache-Source`,
`X-Cache-TTL`, an `ETag` (304 on `If-None-Match`) and a `Cache-Control` a CDN can use on
public answers.
"""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from heron_common.cache import CacheResult, TieredCache
from heron_common.cache.codec import CachedResponse
from heron_common.cache.types import Loaded
from heron_common.context import fresh_var
from heron_common.errors import DomainError
from heron_common.query import QUERY_PARAMETERS, parse_list_query
from heron_common.security.permissions import Principal
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heron_gateway.middleware import FILES_PREFIX, header, remembered_for_short_urls
from heron_gateway.render import CACHE_TAGS_HEADER
from heron_gateway.security import ACCESS_COOKIE, authenticate, principal_of, remember_principal

CACHEABLE_PREFIXES = ("/api/content", "/api/collections")
# Files (and their variants) are kept by their route (routes/media.py), which knows a file's
# size before its bytes; the hot path answers them like pages.
HOT_PREFIXES = (*CACHEABLE_PREFIXES, FILES_PREFIX)
# Writes that change what those pages show: Heron's routes and SonicJS's admin aliases.
# (A media file's change shows in pages that include it; a plugin's route may write content
# as its caller, e.g. demo-data's seed.)
CONTENT_WRITE_PREFIXES = (
    *CACHEABLE_PREFIXES,
    "/admin/api/collections",
    "/api/media",
    "/api/plugins/",
    "/admin/content/",  # the admin's item forms
    "/admin/collections/",  # and collection forms
)
PUBLIC_CACHE_CONTROL = b"public, max-age=0, s-maxage=30, stale-while-revalidate=30"
PRIVATE_CACHE_CONTROL = b"private, no-cache"
VARY = b"Authorization, Cookie"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _NotCacheable(Exception):
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages


_TAGS_HEADER = CACHE_TAGS_HEADER.encode()


def _take_tags(message: Message) -> list[str] | None:
    """Remove the route's cache tags from a response start; None when it named none."""
    headers = message.get("headers", ())
    found = [v for k, v in headers if k == _TAGS_HEADER]
    if not found:
        return None
    message["headers"] = [(k, v) for k, v in headers if k != _TAGS_HEADER]
    return [tag for tag in found[0].decode("latin-1").split(",") if tag] or None


def _without_tags(send: Send) -> Send:
    """`send`, with the internal tags header taken out of the response start."""

    async def forward(message: Message) -> None:
        if message["type"] == "http.response.start":
            _take_tags(message)
        await send(message)

    return forward


def _context(principal: Principal) -> str:
    """Who may share an answer: callers alike in permissions (and, for those who see their own
    drafts only, the same user)."""
    if principal.anonymous:
        return _context_of("anon", principal.permissions)
    if principal.may_all("content.read"):
        return _context_of("perm", principal.permissions)
    # Drafts of their own: answers differ per user.
    return _context_of(f"user:{principal.user_id}", principal.permissions)


@functools.lru_cache(maxsize=1024)
def _context_of(kind: str, permissions: frozenset[str]) -> str:
    # A role's permissions are one shared frozenset (its hash is computed once).
    digest = hashlib.sha256(",".join(sorted(permissions)).encode()).hexdigest()[:16]
    return f"{kind}:{digest}"


def asks_fresh(cache_control: bytes | None) -> bool:
    """The request's `Cache-Control` asks every cache to step aside (`no-cache`, `no-store`)."""
    if cache_control is None:
        return False
    control = cache_control.lower()
    return b"no-cache" in control or b"no-store" in control


def page_key(principal: Principal, scope: Scope) -> str:
    """The page's entry: the caller's context and the normalized request (for a variant in
    `format=auto`, the format the request's `Accept` picks)."""
    query: bytes = scope.get("query_string", b"")
    key = f"{_context(principal)}|{_page_key(scope['path'], query)}"
    if b"format=auto" in query and scope["path"].startswith(FILES_PREFIX):
        key += f"|{auto_format((header(scope, b'accept') or b'').decode('latin-1'))}"
    return key


def auto_format(accept: str) -> str:
    """The smallest image format the client says it takes; empty: the original's."""
    taken = accept.lower()
    for candidate in ("avif", "webp"):
        if f"image/{candidate}" in taken:
            return candidate
    return ""


_UNTIL = "until:"


def until(tags: list[str], default_ttl: float) -> tuple[list[str], float | None]:
    """The tags without a service's `until:<epoch ms>` (the moment the answer may change on
    its own, a scheduled publish), and the TTL that moment leaves (None: the default)."""
    moments = [int(t[len(_UNTIL) :]) for t in tags if t.startswith(_UNTIL) and t[6:].isdigit()]
    rest = [t for t in tags if not t.startswith(_UNTIL)]
    if not moments:
        return rest, None
    seconds = (min(moments) - time.time() * 1000) / 1000
    return rest, seconds if seconds < default_ttl else None


def _is_listing(path: str) -> bool:
    return path == "/api/content" or (
        path.startswith("/api/collections/") and path.endswith("/content")
    )


@remembered_for_short_urls
def _page_key(path: str, query_string: bytes) -> str:
    """The page's path and query as its cache key (remembered: a hit would otherwise parse
    its query each time). Every parameter counts, repeated ones too; on a listing, the query
    language's parameters count as their canonical form, so two spellings of one query share
    one entry."""
    # Blank values are kept: `?status=` is not `/api/content` and must reach validation.
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if _is_listing(path):
        try:
            canonical = parse_list_query(pairs).to_bytes().decode()
        except DomainError:  # the route answers 400, never cached
            canonical = None
        if canonical is not None:
            rest = [
                p for p in pairs if p[0] not in QUERY_PARAMETERS and not p[0].startswith("filter[")
            ]
            return f"{path}?{urlencode(sorted(rest))}#{canonical}"
    return f"{path}?{urlencode(sorted(pairs))}"


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(CONTENT_WRITE_PREFIXES):
            await self.app(scope, receive, send)
            return
        upstreams: Any = getattr(self.api.state, "upstreams", None)
        pages: TieredCache[CachedResponse] | None = getattr(upstreams, "pages", None)
        if pages is None:
            await self.app(scope, receive, _without_tags(send))
            return
        if scope["method"] in _WRITES:
            await self._write(scope, receive, send, upstreams, pages)
            return
        if scope["method"] != "GET" or not path.startswith(CACHEABLE_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            principal: Principal = await authenticate(Request(scope), upstreams)
        except DomainError:  # the route renders the error (or, on a retry, the answer)
            await self.app(scope, receive, _without_tags(send))
            return
        remember_principal(scope, principal)
        public = principal.anonymous
        fresh = asks_fresh(header(scope, b"cache-control"))
        if not pages.enabled or fresh:
            if fresh:
                fresh_var.set(True)  # the services' caches are skipped too
            await self.app(scope, receive, _decorate(send, public))
            return
        key = page_key(principal, scope)
        hit = pages.peek(key)
        if hit is None:
            ran = False

            async def render() -> Loaded[CachedResponse]:
                nonlocal ran
                ran = True
                messages: list[Message] = []

                async def capture(message: Message) -> None:
                    messages.append(message)

                await self.app(scope, receive, capture)
                start = messages[0]
                tags = _take_tags(start)
                headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
                if (
                    start["status"] != 200
                    or tags is None  # a page whose dependencies nobody named is not kept
                    or any(k == b"set-cookie" for k, _ in headers)
                ):
                    raise _NotCacheable(messages)
                tags, ttl = until(tags, pages.options.ttl)
                if ttl is not None and ttl <= 0:
                    raise _NotCacheable(messages)
                body = b"".join(m.get("body", b"") for m in messages[1:])
                if not any(k == b"etag" for k, _ in headers):  # a route's own tag stays
                    headers.append((b"etag", _etag(body)))
                return Loaded(CachedResponse(200, tuple(headers), body), tags=tags, ttl=ttl)

            try:
                hit = await pages.get_or_load(key, render)
            except _NotCacheable as uncached:
                if not ran:  # another request's answer: render this one's own
                    await self.app(scope, receive, _without_tags(send))
                    return
                for message in uncached.messages:
                    await send(message)
                return
        assert hit.value is not None
        match = header(scope, b"if-none-match")
        await send_page(scope, send, hit.value, hit.headers(), public, match=match)

    async def cached(
        self,
        scope: Scope,
        authorization: bytes | None,
        cookie: bytes | None,
        control: bytes | None,
    ) -> tuple[CachedResponse, CacheResult[Any], Principal] | None:
        """This GET's page if memory holds it, and the caller (whose verification the route
        would reuse); None for anything else (the whole chain then answers). No side effects,
        for a faster path in front of the chain (heron_gateway.hot_path), which passes the
        request's `Authorization`, `Cookie` and `Cache-Control` headers."""
        upstreams: Any = getattr(self.api.state, "upstreams", None)
        pages: TieredCache[CachedResponse] | None = getattr(upstreams, "pages", None)
        if pages is None or not pages.enabled:
            return None
        if asks_fresh(control):
            return None
        access_cookie = None
        if cookie is not None and authorization is None:
            access_cookie = cookie_parser(cookie.decode("latin-1")).get(ACCESS_COOKIE)
        try:
            principal = await principal_of(
                upstreams,
                None if authorization is None else authorization.decode("latin-1"),
                access_cookie,
            )
        except DomainError:
            return None
        hit = pages.peek(page_key(principal, scope))
        if hit is None or hit.value is None:
            return None
        return hit.value, hit, principal

    async def _write(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        upstreams: Any,
        pages: TieredCache[CachedResponse],
    ) -> None:
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, record)
        # With Redis, the content service's invalidations reach every gateway. Without it (or
        # while it is unreachable) this gateway drops its own pages after a write it forwarded;
        # other gateways' pages then live at most the cache's degraded TTL.
        # (A form's success is a 303 to the page that shows the result.)
        if 200 <= status < 400 and (upstreams.redis is None or not pages.bus_healthy):
            pages.forget_local()


async def send_page(
    scope: Scope,
    send: Send,
    page: CachedResponse,
    cache_headers: list[tuple[bytes, bytes]],
    public: bool,
    trailer: list[tuple[bytes, bytes]] | tuple[()] = (),
    *,
    match: bytes | None,
) -> int:
    """Answer with a stored page (304 if `match`, the request's If-None-Match, holds its
    ETag); `trailer` headers go last. Returns the status sent."""
    etag = own_control = b""
    for k, v in page.headers:
        if k == b"etag":
            etag = v
        elif k == b"cache-control":
            own_control = v
    if own_control:  # a file's own (its bytes never change under its id)
        extra = [*cache_headers, *trailer]
    else:
        control = PUBLIC_CACHE_CONTROL if public else PRIVATE_CACHE_CONTROL
        extra = [*cache_headers, (b"cache-control", control), (b"vary", VARY), *trailer]
    if (
        match is not None
        and etag
        and (
            match.strip() == b"*"
            or etag in [m.strip().removeprefix(b"W/") for m in match.split(b",")]
        )
    ):
        headers = [
            (b"etag", etag),
            *([(b"cache-control", own_control)] if own_control else []),
            *extra,
        ]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 304
    headers = [*page.headers, (b"content-length", str(len(page.body)).encode()), *extra]
    await send({"type": "http.response.start", "status": page.status, "headers": headers})
    await send({"type": "http.response.body", "body": page.body})
    return page.status


def _decorate(send: Send, public: bool) -> Send:
    """Passes the answer through, marked as not served from (or stored in) the cache."""
    extra = [
        (b"x-cache-status", b"BYPASS"),
        (b"x-cache-source", b"database"),
        (b"x-cache-ttl", b"0"),
        (b"cache-control", PUBLIC_CACHE_CONTROL if public else PRIVATE_CACHE_CONTROL),
        (b"vary", VARY),
    ]

    async def decorated(message: Message) -> None:
        if message["type"] == "http.response.start":
            _take_tags(message)
            if message["status"] == 200:
                message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return decorated
