"""What the routes accept, enforced before they run: methods, query parameters, credentials
and body types.

FastAPI's router answers a method a path does not take with the methods of the first route
it tried, reads and validates a body before any dependency can refuse an anonymous caller,
ignores query parameters it does not know (so `?junk=N` makes a new page-cache entry each
time), and lets `HEAD` fail where `GET` works. The route table here is built once from the
app's routes; the two small ASGI layers below use it:

- `HeadAsGetMiddleware` (in front of the page cache, so `HEAD` is served from it too) runs a
  `HEAD` as the `GET` it mirrors and drops the body.
- `RouteGuardMiddleware` (behind the page cache, so a cache hit never pays for it) answers
  `OPTIONS` with the path's `Allow`, refuses an unsupported method with `405` and the full
  `Allow`, an unknown query parameter with `400` naming it, an anonymous write with `401`
  before its body is read, and a body that is not JSON with `415`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from heron_common.errors import AUTHENTICATION_REQUIRED
from heron_common.security.authz import PUBLIC
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heron_gateway.middleware import header, send_error
from heron_gateway.observability import ROUTE_KEY
from heron_gateway.security import ACCESS_COOKIE, OPEN, PLUGIN, SAFE_METHODS, Access

_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class RouteInfo:
    path_regex: re.Pattern[str]
    methods: frozenset[str]
    query: frozenset[str]
    need: str
    takes_body: bool
    template: str = ""
    any_query: bool = False
    """Its query is someone else's to check (a plugin's route): any parameter passes."""


def _flatten(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included APIRouter
        if included is not None:
            yield from _flatten(included.routes)
        else:
            yield route


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _route_info(route: BaseRoute) -> RouteInfo | None:
    if isinstance(route, APIRoute):
        dependants = list(_walk(route.dependant))
        needs = [d.call.need for d in dependants if isinstance(d.call, Access)]
        query = frozenset(p.alias for d in dependants for p in d.query_params)
        methods = frozenset(route.methods or ())
        need = needs[0] if needs else OPEN
        takes_body = route.body_field is not None
        any_query = bool(getattr(route.endpoint, "takes_any_query", False))
        return RouteInfo(route.path_regex, methods, query, need, takes_body, route.path, any_query)
    if isinstance(route, Route) and route.methods:  # the API description's own pages
        methods = frozenset(route.methods)
        return RouteInfo(route.path_regex, methods, frozenset(), OPEN, False, route.path)
    return None


def _lead(template: str) -> tuple[str, ...] | None:
    """A route template's first two segments, or None if either is a parameter (or none)."""
    parts = tuple(template.strip("/").split("/")[:2])
    if not template or any("{" in part for part in parts):
        return None
    return parts


def _position(entry: tuple[int, RouteInfo]) -> int:
    return entry[0]


class RouteTable:
    """Every route's methods, query parameters, declared access and whether it takes a body."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = [info for r in _flatten(routes) if (info := _route_info(r)) is not None]
        # Routes by their leading literal segments (up to two), so a request tries only the
        # routes that could match it, in the table's order; the rest are tried by everyone.
        self._by_lead: dict[tuple[str, ...], list[tuple[int, RouteInfo]]] = {}
        self._anywhere: list[tuple[int, RouteInfo]] = []
        for n, info in enumerate(self.routes):
            lead = _lead(info.template)
            target = self._anywhere if lead is None else self._by_lead.setdefault(lead, [])
            target.append((n, info))

    def matching(self, path: str) -> list[RouteInfo]:
        parts = tuple(path.strip("/").split("/", 2)[:2])
        candidates = [*self._by_lead.get(parts, ()), *self._anywhere]
        if len(parts) == 2:
            candidates += self._by_lead.get(parts[:1], ())
        candidates.sort(key=_position)
        return [info for _, info in candidates if info.path_regex.match(path)]

    @staticmethod
    def allow(routes: list[RouteInfo]) -> str:
        methods = {m for r in routes for m in r.methods} | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(m for m in _METHOD_ORDER if m in methods)


class HeadAsGetMiddleware:
    """`HEAD` is the `GET` of the same URL without its body (headers, length and all)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return header(scope, b"transfer-encoding") is not None


def _has_credentials(scope: Scope) -> bool:
    if header(scope, b"authorization") is not None:
        return True
    cookie = header(scope, b"cookie")
    return cookie is not None and ACCESS_COOKIE.encode() + b"=" in cookie


class RouteGuardMiddleware:
    def __init__(self, app: ASGIApp, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        routes = self.table.matching(path)
        if not routes:  # the app's own 404
            await self.app(scope, receive, send)
            return
        route = next((r for r in routes if method in r.methods), None)
        if route is not None:  # for the access log and the HTTP metrics
            scope.setdefault("state", {})[ROUTE_KEY] = route.template
        else:
            allow = self.table.allow(routes).encode()
            if method == "OPTIONS":
                start = [(b"allow", allow), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 204, "headers": start})
                await send({"type": "http.response.body", "body": b""})
                return
            await send_error(
                scope, send, 405, f"Method {method} is not allowed on {path}.", [(b"allow", allow)]
            )
            return
        unknown = (
            []
            if route.any_query
            else _unknown_parameters(scope.get("query_string", b""), route.query)
        )
        if unknown:
            known = ", ".join(sorted(route.query)) or "none"
            await send_error(
                scope,
                send,
                400,
                f"Unknown query parameter(s): {', '.join(unknown)}. This route takes: {known}.",
                details=[
                    {"field": f"query.{name}", "message": "not a parameter of this route"}
                    for name in unknown
                ],
            )
            return
        if method not in SAFE_METHODS:
            if route.need not in (PUBLIC, OPEN, PLUGIN) and not _has_credentials(scope):
                await send_error(
                    scope,
                    send,
                    401,
                    AUTHENTICATION_REQUIRED,
                    [(b"www-authenticate", b'Bearer realm="heron"')],
                    [{"field": "Authorization", "message": "send `Authorization: Bearer <token>`"}],
                )
                return
            if route.takes_body and _has_body(scope):
                content_type = header(scope, b"content-type") or b""
                if not _is_json(content_type):
                    shown = content_type.decode("latin-1")[:100] or "none"
                    await send_error(
                        scope,
                        send,
                        415,
                        f"The request body must be JSON (Content-Type: application/json), "
                        f"not {shown}.",
                    )
                    return
        await self.app(scope, receive, send)


def _unknown_parameters(query: bytes, known: frozenset[str]) -> list[str]:
    if not query:
        return []
    names: dict[str, Any] = {}
    brackets = "filter" in known  # `filter[field][_op]=v`: the filter parameter's other spelling
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name not in known and not (brackets and name.startswith("filter[")):
            names[name[:64]] = None
    return list(names)[:20]
