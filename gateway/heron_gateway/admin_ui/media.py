"""The admin's media library: the files as a grid, search and a type filter, uploads of several
files at once (chosen or dropped, each with its own progress bar), and each file's details
(preview, alt text, caption).

Uploads go from the browser to the REST API's `POST /api/media/upload` with the session's
cookie and CSRF token (`static/admin/admin.js`): the gateway streams them to the media service
as it does for any client, with the same limits and checks. Everything else here calls the
media service over gRPC as the signed-in user.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from cms.common.v1.common_pb2 import PageRequest
from cms.media.v1 import media_pb2 as pb
from fastapi import APIRouter, Depends, Query, Request
from heron_common.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from heron_common.names import FOLDER_PATTERN, is_folder
from heron_common.security.permissions import Principal
from starlette.responses import RedirectResponse, Response

from heron_gateway.admin_ui.pages import PageAccess, PageError, as_user, each, form, render
from heron_gateway.routes.media import media_json
from heron_gateway.upstreams import UpstreamsDep

router = APIRouter(include_in_schema=False)
# Included before `router`: its path would otherwise be taken for a file's (`{media_id}`).
bulk_router = APIRouter(include_in_schema=False)
ReadsMedia = Annotated[Principal, Depends(PageAccess("media.read"))]
UpdatesMedia = Annotated[Principal, Depends(PageAccess("media.update"))]
PAGE_SIZE = 48
TYPES = {
    "": "Any type",
    "image/": "Images",
    "video/": "Videos",
    "audio/": "Audio",
    "application/pdf": "PDF",
}


@router.get("/admin/media")
async def library_page(
    request: Request,
    upstreams: UpstreamsDep,
    principal: ReadsMedia,
    q: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    folder: Annotated[str | None, Query(max_length=2100, pattern=FOLDER_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    done: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    if type and type not in TYPES:
        raise PageError(400, "Unknown type", f"Choose one of: {', '.join(t for t in TYPES if t)}.")
    reply = await as_user(
        upstreams,
        principal,
        upstreams.media.ListMedia,
        pb.ListMediaRequest(
            page=PageRequest(limit=PAGE_SIZE, cursor=cursor or ""),
            mime_type=type or "",
            search=q or "",
            folder=folder or "",
            recursive=True,
            sort="-uploaded_at",
        ),
    )
    files = [media_json(m) for m in reply.media]
    here = {"q": q or "", "type": type or "", "folder": folder or ""}
    shown = {k: v for k, v in here.items() if v}
    next_page = ""
    if reply.page.next_cursor:
        next_page = "/admin/media?" + "&".join(
            f"{k}={quote(v)}" for k, v in {**shown, "cursor": reply.page.next_cursor}.items()
        )
    return render(
        request,
        "media.html",
        principal,
        files=files,
        filters=here,
        types=TYPES,
        next_page=next_page,
        folders=sorted({f["folder"] for f in files if f["folder"]}),
        done=done or "",
        max_bytes=upstreams.settings.media_max_request_bytes,
    )


@router.get("/admin/media/{media_id}")
async def file_page(
    request: Request,
    media_id: str,
    upstreams: UpstreamsDep,
    principal: ReadsMedia,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    try:
        found = await as_user(
            upstreams, principal, upstreams.media.GetMedia, pb.GetMediaRequest(id=media_id)
        )
    except (NotFound, InvalidArgument):
        raise PageError(
            404, "No such file", "This file does not exist, or you may not see it."
        ) from None
    return render(
        request,
        "media_file.html",
        principal,
        file=media_json(found),
        notice="Saved." if saved else "",
    )


@router.post("/admin/media/{media_id}")
async def update_file(
    request: Request, media_id: str, upstreams: UpstreamsDep, principal: UpdatesMedia
) -> Response:
    data = await form(request, principal)
    try:
        version = int(str(data.get("version") or ""))
    except ValueError:
        raise PageError(
            400, "Form incomplete", "The form lost its version; reload the page."
        ) from None
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.media.UpdateMedia,
            pb.UpdateMediaRequest(
                id=media_id,
                alt=str(data.get("alt") or ""),
                caption=str(data.get("caption") or ""),
                expected_version=version,
            ),
        )
    except Conflict as exc:
        raise PageError(409, "Someone else saved first", exc.message) from None
    except (InvalidArgument, NotFound, PermissionDenied) as exc:
        raise PageError(exc.http_status, "Not saved", exc.message) from None
    return RedirectResponse(f"/admin/media/{quote(media_id)}?saved=1", 303)


@bulk_router.post("/admin/media/bulk")
async def bulk_files(request: Request, upstreams: UpstreamsDep, principal: ReadsMedia) -> Response:
    """Move the chosen files to a folder, or delete them; each file its own call (the service
    checks each one's permission); the library then says what was done and what not."""
    data = await form(request, principal)
    action = str(data.get("action") or "")
    ids = [str(i) for i in data.getlist("id")][:100]
    if action not in ("move", "delete"):
        raise PageError(400, "Unknown action", "Move the chosen files, or delete them.")
    if not ids:
        raise PageError(400, "Nothing chosen", "Tick the files to act on first.")
    target = str(data.get("folder") or "").strip()
    if action == "move" and not is_folder(target):
        raise PageError(400, "Not a folder", "A folder looks like /photos/2026 (or / for none).")
    method: Any
    calls: list[Any]
    if action == "delete":
        method, calls = upstreams.media.DeleteMedia, [pb.DeleteMediaRequest(id=i) for i in ids]
        verb = "deleted"
    else:
        method = upstreams.media.UpdateMedia
        calls = [pb.UpdateMediaRequest(id=i, folder=target) for i in ids]
        verb = f"moved to {target}"
    outcome = await each(upstreams, principal, method, calls, verb)
    return RedirectResponse(f"/admin/media?done={quote(outcome)}", 303)
