"""The admin UI: server-rendered pages for editors under `/admin`.

Jinja2 templates (autoescaped, so a title like `<img onerror=…>` shows as text) and htmx
(vendored, `static/admin/`), with no inline script and nothing from another origin: the pages'
Content-Security-Policy (`middleware.SecurityHeadersMiddleware`) allows scripts, styles and
images from the gateway only. Pages call the services over gRPC as the signed-in user, as the
REST routes do (never HTTP to the gateway itself), so the services enforce the same
permissions; each page also declares the permission it needs (`PageAccess`).

Sessions are the REST API's cookie sessions (`POST /auth/login`'s cookies), signed in here with
the same auth service call, rate limits and messages. A visitor without a session, or whose
session expired, is sent to the sign-in page and back to the page after. Every form that
changes something carries the session's CSRF token (a hidden field, or htmx's
`X-CSRF-Token`); the sign-in form carries a token of its own, so another site cannot sign a
browser in to an account of its choosing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import orjson
from cms.auth.v1 import auth_pb2
from cms.common.v1.common_pb2 import PageRequest
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends, Query, Request
from heron_common.errors import (
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from heron_common.limits import ITEM_STATUSES
from heron_common.query import parse_list_query
from heron_common.rpc.client import call
from heron_common.security.authz import AUTHENTICATED, PUBLIC
from heron_common.security.identity import csrf_matches
from heron_common.security.permissions import Principal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from heron_gateway.render import collection_json, item_json
from heron_gateway.routes.admin_cache import cache_stats_of, cache_views
from heron_gateway.routes.auth import (
    clear_session_cookies,
    client_metadata,
    end_session,
    set_session_cookies,
)
from heron_gateway.routes.health import readiness
from heron_gateway.security import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    OPEN,
    REFRESH_COOKIE,
    Access,
)
from heron_gateway.upstreams import SettingsDep, Upstreams, UpstreamsDep

HTMX_VERSION = "2.0.11"
PREFIX = "/admin"
SIGN_IN = "/admin/login"
LOGIN_CSRF_COOKIE = "heron_login_csrf"
PAGE_SIZE = 25

_HERE = Path(__file__).resolve().parent
ASSETS = _HERE.parent / "static" / "admin"
_MEDIA_TYPES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "admin.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
Asset = Literal["htmx.min.js", "admin.js", "admin.css", "favicon.svg"]

templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(epoch_ms: int | None) -> Markup:
    """A time (epoch milliseconds) as a `<time>` element, in UTC."""
    if not epoch_ms:
        return Markup("")
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        moment.strftime("%Y-%m-%d %H:%M UTC"),
    )


templates.filters["when"] = _when
router = APIRouter(include_in_schema=False)


class PageError(Exception):
    """Rendered as the error page, with `status`."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _to_sign_in(request: Request, error: str = "") -> HTTPException:
    """A redirect to the sign-in page, which comes back to this page afterwards."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"next": back, **({"error": error} if error else {})}
    return HTTPException(303, detail="Sign in first.", headers={"Location": _url(SIGN_IN, query)})


class PageAccess(Access):
    """`Access(need)` for a page: without a (valid, unexpired) session the browser goes to the
    sign-in page and comes back after; a permission the user lacks is the 403 page. Forms
    check the CSRF token themselves (`form`)."""

    def __init__(self, need: str) -> None:
        super().__init__(need, csrf=False)

    async def __call__(self, request: Request) -> Principal:
        try:
            principal = await super().__call__(request)
        except Unauthenticated:
            raise _to_sign_in(
                request,
                "Your session has ended; sign in again." if _has_session(request) else "",
            ) from None
        except PermissionDenied as exc:
            raise PageError(403, "Not allowed", exc.message) from None
        if principal is None or principal.anonymous:
            raise _to_sign_in(request)
        return principal


def _has_session(request: Request) -> bool:
    return ACCESS_COOKIE in request.cookies or REFRESH_COOKIE in request.cookies


SignedIn = Annotated[Principal, Depends(PageAccess(AUTHENTICATED))]
ReadsCollections = Annotated[Principal, Depends(PageAccess("collections.read"))]
ReadsContent = Annotated[Principal, Depends(PageAccess("content.read"))]
Open = Annotated[None, Depends(Access(OPEN))]
Anyone = Annotated[Principal, Depends(Access(PUBLIC, csrf=False, lenient=True))]


async def form(request: Request, principal: Principal) -> FormData:
    """The posted form, once its CSRF token (field `csrf_token`, or htmx's `X-CSRF-Token`
    header) is the session's own; a 403 page otherwise."""
    data = await request.form()
    given = request.headers.get(CSRF_HEADER) or str(data.get("csrf_token") or "")
    if request.headers.get("authorization") is None and not csrf_matches(
        principal.csrf_hash, given
    ):
        raise PageError(
            403,
            "Form expired",
            "This form is out of date or did not come from Heron. Reload the page and try again.",
        )
    return data


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the user, the session's CSRF token and the current path."""
    body = templates.get_template(template).render(
        user=_user(principal),
        csrf_token=request.cookies.get(CSRF_COOKIE, ""),
        path=request.url.path,
        htmx_version=HTMX_VERSION,
        **context,
    )
    return HTMLResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _user(principal: Principal | None) -> dict[str, Any] | None:
    if principal is None or principal.anonymous:
        return None
    return {"id": principal.user_id, "role": principal.role, "may": principal.may}


async def page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return render(
        request,
        "error.html",
        None,
        status=exc.status,
        title=exc.title,
        message=exc.message,
    )


def is_page(path: str) -> bool:
    """An admin page (not SonicJS's admin JSON routes under /admin/api and /admin/cache)."""
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(
        ("/admin/api/", "/admin/cache", "/admin/assets/")
    )


def domain_errors(
    default: Callable[[Request, Any], Response | Awaitable[Response]],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The API's error handler, but a page for an admin page's error (a service away, a
    deadline passed): the browser shows what happened and what to do, not JSON."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not is_page(request.url.path) or not isinstance(exc, DomainError):
            answer = default(request, exc)
            return answer if isinstance(answer, Response) else await answer
        response = render(
            request,
            "error.html",
            None,
            status=exc.http_status,
            title=_ERROR_TITLES.get(exc.http_status, "Something went wrong"),
            message=exc.message,
        )
        for name, value in exc.headers.items():
            response.headers[name] = value
        if exc.http_status == 503:
            response.headers["Retry-After"] = "1"
        return response

    return handle


_ERROR_TITLES = {
    400: "Not possible",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    429: "Too many attempts",
    503: "A service is unavailable",
    504: "A service did not answer in time",
}


def _url(path: str, query: dict[str, str]) -> str:
    shown = {k: v for k, v in query.items() if v}
    return f"{path}?{urlencode(shown)}" if shown else path


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: an admin page of this site, never another site."""
    if (
        target
        and target.startswith(PREFIX)
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 0x20 for c in target)
        and not target.startswith(SIGN_IN)
    ):
        return target
    return PREFIX


async def as_user(upstreams: Upstreams, principal: Principal, method: Any, request: Any) -> Any:
    """A service call made as the signed-in user, as the REST routes make it."""
    return await call(
        method,
        request,
        timeout=upstreams.settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )


async def each(
    upstreams: Upstreams, principal: Principal, method: Any, requests: list[Any], verb: str
) -> str:
    """Make each call as the user, each checked on its own (a bulk action); what was done and
    what not, as one sentence for the page (`verb`: what a done one was, e.g. "deleted")."""
    done, refused = 0, []
    for one in requests:
        try:
            await as_user(upstreams, principal, method, one)
            done += 1
        except (Conflict, InvalidArgument, NotFound, PermissionDenied) as exc:
            refused.append(exc.message)
    outcome = f"{done} {verb}."
    if refused:
        outcome += f" {len(refused)} not: {refused[0]}"
    return outcome[:400]


# -- assets ---------------------------------------------------------------------------------------
@router.get("/admin/assets/{name}")
async def asset(name: Asset, _: Open) -> Response:
    return FileResponse(
        ASSETS / name,
        media_type=_MEDIA_TYPES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- signing in and out ---------------------------------------------------------------------------
NextParam = Annotated[str | None, Query(max_length=2000)]
NoticeParam = Annotated[str | None, Query(max_length=500)]


@router.get("/admin/login")
async def sign_in_page(
    request: Request,
    principal: Anyone,
    next: NextParam = None,
    error: NoticeParam = None,
    message: NoticeParam = None,
) -> Response:
    if not principal.anonymous:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _sign_in_form(request, next=_safe_next(next), error=error or "", message=message or "")


def _sign_in_form(
    request: Request,
    *,
    next: str,
    error: str = "",
    message: str = "",
    email: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        None,
        status=status,
        headers=headers,
        next=next,
        error=error,
        message=message,
        email=email,
        login_csrf=token,
        problems=problems or {},
    )
    settings = request.app.state.settings
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=SIGN_IN,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
    )
    return response


@router.post("/admin/login")
async def sign_in(
    request: Request, upstreams: UpstreamsDep, settings: SettingsDep, _: Open
) -> Response:
    data = await request.form()
    email = str(data.get("email") or "").strip()
    password = str(data.get("password") or "")
    back = _safe_next(str(data.get("next") or ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = str(data.get("login_csrf") or "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return _sign_in_form(
            request,
            next=back,
            email=email,
            status=403,
            error="This sign-in form is out of date. Try again.",
        )
    problems = {}
    if not email:
        problems["email"] = "Enter your email address."
    if not password:
        problems["password"] = "Enter your password."
    if problems:
        return _sign_in_form(
            request,
            next=back,
            email=email,
            status=400,
            error="Validation failed.",
            problems=problems,
        )
    try:
        session = await call(
            upstreams.auth.Login,
            auth_pb2.LoginRequest(email=email, password=password),
            timeout=settings.rpc_timeout_seconds,
            metadata=client_metadata(request, settings),
        )
    except (Unauthenticated, InvalidArgument, ResourceExhausted) as exc:
        status = exc.http_status
        return _sign_in_form(
            request,
            next=back,
            email=email,
            status=status,
            error=exc.message,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "retry-after"},
            problems={d.field: d.message for d in exc.details},
        )
    response = RedirectResponse(back, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    set_session_cookies(response, settings, session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=SIGN_IN)
    return response


@router.post("/admin/logout")
async def sign_out(
    request: Request, upstreams: UpstreamsDep, settings: SettingsDep, principal: Anyone
) -> Response:
    if not principal.anonymous:
        await form(request, principal)
        await end_session(upstreams, settings, principal, request.cookies.get(REFRESH_COOKIE) or "")
    response = RedirectResponse(_url(SIGN_IN, {"message": "You have signed out."}), 303)
    response.headers["Cache-Control"] = "no-store"
    clear_session_cookies(response, settings)
    return response


# -- dashboard ------------------------------------------------------------------------------------
@router.get("/admin")
async def dashboard(
    request: Request, upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn
) -> Response:
    collections: list[dict[str, Any]] = []
    if principal.may("collections.read") and principal.may("content.read"):
        listed = await as_user(
            upstreams, principal, upstreams.content.ListCollections, pb.ListCollectionsRequest()
        )
        counts = await asyncio.gather(
            *(_counts(upstreams, principal, c.name) for c in listed.collections)
        )
        collections = [
            {"name": c.name, "display_name": c.display_name or c.name, "counts": n}
            for c, n in zip(listed.collections, counts, strict=True)
        ]
    recent: list[dict[str, Any]] = []
    if principal.may("content.read"):
        latest = await as_user(
            upstreams,
            principal,
            upstreams.content.ListItems,
            pb.ListItemsRequest(
                page=PageRequest(limit=10),
                query_json=parse_list_query([("sort", "-updated_at")]).to_bytes(),
            ),
        )
        recent = [
            {
                "id": i.id,
                "title": i.title,
                "status": i.status,
                "collection": i.collection_name,
                "version": i.version,
                "updated_at": i.updated_at,
            }
            for i in latest.items
        ]
    checks = await readiness(upstreams, settings.ready_timeout_seconds)
    caches = []
    if principal.may("cache.manage"):
        for view in await cache_views(upstreams):
            stats = cache_stats_of(view)
            caches.append(
                {
                    "namespace": view.namespace,
                    "hit_rate": stats["hitRate"],
                    "lookups": stats["totalRequests"],
                    "visible": view.local,
                }
            )
    return render(
        request,
        "dashboard.html",
        principal,
        collections=collections,
        recent=recent,
        statuses=ITEM_STATUSES,
        checks=checks,
        caches=caches,
    )


async def _counts(upstreams: Upstreams, principal: Principal, collection: str) -> dict[str, int]:
    """How many items of `collection` the user may see, per status."""

    async def count(status: str) -> int:
        reply = await as_user(
            upstreams,
            principal,
            upstreams.content.ListItems,
            pb.ListItemsRequest(
                collection=collection,
                status=status,
                page=PageRequest(limit=1),
                query_json=parse_list_query([("meta", "total"), ("fields", "id")]).to_bytes(),
            ),
        )
        return int(reply.page.total) if reply.page.HasField("total") else 0

    totals = await asyncio.gather(*(count(s) for s in ITEM_STATUSES))
    return dict(zip(ITEM_STATUSES, totals, strict=True))


# -- collections ----------------------------------------------------------------------------------
@router.get("/admin/collections")
async def collections_page(
    request: Request, upstreams: UpstreamsDep, principal: ReadsCollections
) -> Response:
    listed = await as_user(
        upstreams, principal, upstreams.content.ListCollections, pb.ListCollectionsRequest()
    )
    shown = []
    for c in listed.collections:
        entry = collection_json(c)
        schema = orjson.loads(c.schema_json or b"{}")
        entry["field_names"] = list((schema.get("properties") or {}).keys())
        shown.append(entry)
    return render(request, "collections.html", principal, collections=shown)


# -- content --------------------------------------------------------------------------------------
StatusParam = Annotated[str | None, Query(max_length=20)]
SearchParam = Annotated[str | None, Query(max_length=200)]
SortParam = Annotated[str | None, Query(max_length=100)]
CursorParam = Annotated[str | None, Query(max_length=2000)]
SORTS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-updated_at": "Recently changed",
    "title": "Title A to Z",
    "-title": "Title Z to A",
}


@router.get("/admin/content/{collection}")
async def content_page(
    request: Request,
    collection: str,
    upstreams: UpstreamsDep,
    principal: ReadsContent,
    status: StatusParam = None,
    q: SearchParam = None,
    sort: SortParam = None,
    cursor: CursorParam = None,
    done: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    if status and status not in ITEM_STATUSES:
        raise PageError(400, "Unknown status", f"Status must be one of {', '.join(ITEM_STATUSES)}.")
    if sort and sort not in SORTS:
        raise PageError(400, "Unknown sort", f"Sort by one of {', '.join(SORTS)}.")
    try:
        found = await as_user(
            upstreams,
            principal,
            upstreams.content.GetCollection,
            pb.GetCollectionRequest(collection=collection),
        )
    except NotFound:
        raise PageError(
            404, "No such collection", f"There is no collection {collection!r}."
        ) from None
    wanted: list[tuple[str, str]] = [("sort", sort or "-created_at")]
    if q:
        wanted.append(("search", q))
    try:
        reply = await as_user(
            upstreams,
            principal,
            upstreams.content.ListItems,
            pb.ListItemsRequest(
                collection=found.id,
                status=status or "",
                page=PageRequest(limit=PAGE_SIZE, cursor=cursor or ""),
                query_json=parse_list_query(wanted).to_bytes(),
            ),
        )
    except InvalidArgument as exc:
        raise PageError(400, "Cannot list these items", exc.message) from None
    items = [item_json(i) for i in reply.items]
    here = {"status": status or "", "q": q or "", "sort": sort or ""}
    return render(
        request,
        "content.html",
        principal,
        collection=collection_json(found),
        items=items,
        statuses=ITEM_STATUSES,
        sorts=SORTS,
        filters=here,
        next_page=_url(request.url.path, {**here, "cursor": reply.page.next_cursor})
        if reply.page.next_cursor
        else "",
        first_page=_url(request.url.path, here) if cursor else "",
        done=done or "",
        quote=quote,
    )
