"""The admin's item editor: a form generated from the collection's schema, for a new item and
for an existing one, with the service's validation messages next to each field, publish and
unpublish, and the version check (someone else saved first: both versions side by side)."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import nh3
import orjson
from cms.common.v1.common_pb2 import PageRequest
from cms.content.v1 import content_pb2 as pb
from cms.media.v1 import media_pb2
from fastapi import APIRouter, Depends, Query, Request
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from heron_common.names import file_path
from heron_common.query import parse_list_query
from heron_common.security.authz import AUTHENTICATED
from heron_common.security.permissions import Principal
from markdown_it import MarkdownIt
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from heron_gateway.admin_ui.pages import PageAccess, PageError, as_user, each, form, render
from heron_gateway.render import collection_json
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(include_in_schema=False)
# Included before `router`: its path would otherwise be taken for an item's (`{item_id}`).
bulk_router = APIRouter(include_in_schema=False)


# -- the item editor ------------------------------------------------------------------------------
CreatesContent = Annotated[Principal, Depends(PageAccess("content.create"))]
UpdatesContent = Annotated[Principal, Depends(PageAccess("content.update"))]
TEXT_TYPES = {"string", "email", "url", "slug", "color"}
LONG_TEXT_TYPES = {"text", "textarea", "markdown", "richtext"}
JSON_TYPES = {"array", "object", "json"}
_SONIC_FORMATS = {
    "richtext": "richtext",
    "markdown": "markdown",
    "textarea": "textarea",
    "media": "media",
    "date": "date",
    "date-time": "datetime",
    "email": "email",
    "uri": "url",
    "color": "color",
    "slug": "slug",
    "reference": "reference",
}


def editor_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The form's fields, in the schema's order: name, label, kind (the widget), options."""
    required = set(schema.get("required") or [])
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict) or spec.get("hidden"):
            continue
        kind = str(spec.get("type") or "string")
        if kind == "string" and spec.get("format") in _SONIC_FORMATS:
            kind = _SONIC_FORMATS[spec["format"]]
        options = [
            o if isinstance(o, dict) else {"value": o, "label": o}
            for o in (spec.get("options") or spec.get("enum") or [])
        ]
        fields.append(
            {
                "name": name,
                "label": spec.get("title") or name.replace("_", " ").capitalize(),
                "kind": kind,
                "help": spec.get("helpText") or spec.get("description") or "",
                "placeholder": spec.get("placeholder") or "",
                "required": bool(spec.get("required")) or name in required,
                "multiple": bool(spec.get("multiple")),
                "options": [
                    {"value": str(o.get("value")), "label": o.get("label")} for o in options
                ],
                "readonly": bool(spec.get("readonly")),
                "target": str(
                    spec.get("collection") or next(iter(spec.get("collections") or []), "")
                ),
                "accept": _family(spec.get("accept")),
            }
        )
    return fields


def _family(accept: Any) -> str:
    """The media type filter a picker starts with: `image/*` → `image/`, else any."""
    first = accept[0] if isinstance(accept, list) and accept else accept
    if isinstance(first, str):
        first = first.split(",")[0].strip()
        if first.endswith("/*"):
            return first[:-1]
    return ""


def _form_value(field: dict[str, Any], data: FormData) -> tuple[bool, Any, str]:
    """(given, the value for the service, a problem found here). Values the service must judge
    (a number that is not one) are passed as they are, so its message is the one shown."""
    name, kind = f"data.{field['name']}", field["kind"]
    if kind in ("boolean", "checkbox"):
        return True, data.get(name) == "on", ""
    if kind == "multiselect" or (kind == "reference" and field["multiple"]):
        values = [str(v) for v in data.getlist(name) if str(v).strip()]
        if kind == "reference":
            values = [v.strip() for joined in values for v in joined.split(",") if v.strip()]
        return bool(values), values, ""
    raw = str(data.get(name) or "")
    if not raw.strip():
        return False, None, ""
    if kind in ("number", "integer"):
        try:
            number = float(raw)
        except ValueError:
            return True, raw, ""
        return True, int(number) if number.is_integer() else number, ""
    if kind in JSON_TYPES:
        try:
            return True, orjson.loads(raw), ""
        except orjson.JSONDecodeError as exc:
            return True, None, f"is not valid JSON ({exc.msg} at character {exc.pos})"
    if kind == "datetime" and len(raw) == 16:  # a datetime-local input: minutes, in UTC
        return True, f"{raw}:00Z", ""
    if kind == "media" and field["multiple"]:
        return True, [v.strip() for v in raw.split(",") if v.strip()], ""
    return True, raw, ""


def _document(
    fields: list[dict[str, Any]], data: FormData
) -> tuple[dict[str, Any], dict[str, str]]:
    document: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in fields:
        given, value, problem = _form_value(field, data)
        if problem:
            problems[f"data.{field['name']}"] = f"{field['label']} {problem}."
        elif given:
            document[field["name"]] = value
    return document, problems


def _shown_values(fields: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Each field's value as its input shows it."""
    shown: dict[str, Any] = {}
    for field in fields:
        value = values.get(field["name"])
        if value is None:
            shown[field["name"]] = [] if field["kind"] == "multiselect" else ""
        elif field["kind"] in JSON_TYPES:
            shown[field["name"]] = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        elif field["kind"] == "datetime" and isinstance(value, str):
            shown[field["name"]] = value[:16]
        elif isinstance(value, list) and field["kind"] != "multiselect":
            shown[field["name"]] = ", ".join(str(v) for v in value)
        else:
            shown[field["name"]] = value
    return shown


async def _collection(upstreams: Upstreams, principal: Principal, name: str) -> Any:
    try:
        return await as_user(
            upstreams,
            principal,
            upstreams.content.GetCollection,
            pb.GetCollectionRequest(collection=name),
        )
    except NotFound:
        raise PageError(404, "No such collection", f"There is no collection {name!r}.") from None


def _editor(
    request: Request,
    principal: Principal,
    collection: Any,
    *,
    item: dict[str, Any] | None,
    values: dict[str, Any],
    title: str,
    slug: str,
    problems: dict[str, str] | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
    conflict: dict[str, Any] | None = None,
) -> HTMLResponse:
    schema = orjson.loads(collection.schema_json or b"{}")
    fields = editor_fields(schema)
    return render(
        request,
        "item.html",
        principal,
        status=status,
        collection=collection_json(collection),
        fields=fields,
        values=_shown_values(fields, values),
        item=item,
        title=title,
        slug=slug,
        problems=problems or {},
        error=error,
        notice=notice,
        conflict=conflict,
    )


def _problems(exc: DomainError) -> dict[str, str]:
    return {d.field: d.message for d in exc.details if d.field}


@router.get("/admin/content/{collection}/new")
async def new_item_page(
    request: Request, collection: str, upstreams: UpstreamsDep, principal: CreatesContent
) -> Response:
    found = await _collection(upstreams, principal, collection)
    return _editor(request, principal, found, item=None, values={}, title="", slug="")


def _posted(found: Any, data: FormData) -> tuple[dict[str, Any], dict[str, str], str, str]:
    """The item a form posts for `found`'s schema: its data, what is wrong with it before the
    service looks, its title and its slug."""
    fields = editor_fields(orjson.loads(found.schema_json or b"{}"))
    document, problems = _document(fields, data)
    title, slug = str(data.get("title") or "").strip(), str(data.get("slug") or "").strip()
    if not title:
        problems["title"] = "Give the item a title."
    return document, problems, title, slug


_INVALID = "Validation failed: fix the fields marked below."


@router.post("/admin/content/{collection}/new")
async def create_item(
    request: Request, collection: str, upstreams: UpstreamsDep, principal: CreatesContent
) -> Response:
    data = await form(request, principal)
    found = await _collection(upstreams, principal, collection)
    document, problems, title, slug = _posted(found, data)
    # The form again, with what was typed.
    again = partial(
        _editor, request, principal, found, item=None, values=document, title=title, slug=slug
    )
    if problems:
        return again(problems=problems, error=_INVALID, status=400)
    try:
        made = await as_user(
            upstreams,
            principal,
            upstreams.content.CreateItem,
            pb.CreateItemRequest(
                collection=found.id,
                title=title,
                slug=slug,
                data_json=orjson.dumps(document),
                status="published" if data.get("action") == "publish" else "draft",
            ),
        )
    except (InvalidArgument, Conflict, AlreadyExists, PermissionDenied) as exc:
        return again(problems=_problems(exc), error=exc.message, status=exc.http_status)
    return RedirectResponse(f"/admin/content/{quote(collection)}/{made.id}?saved=1", 303)


SavedParam = Annotated[str | None, Query(max_length=10)]


@router.get("/admin/content/{collection}/{item_id}")
async def item_page(
    request: Request,
    collection: str,
    item_id: str,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
    saved: SavedParam = None,
) -> Response:
    found = await _collection(upstreams, principal, collection)
    item = await _item(upstreams, principal, item_id)
    return _editor(
        request,
        principal,
        found,
        item=_item_summary(item),
        values=orjson.loads(item.data_json or b"{}"),
        title=item.title,
        slug=item.slug,
        notice="Saved." if saved else "",
    )


async def _item(upstreams: Upstreams, principal: Principal, item_id: str) -> Any:
    try:
        return await as_user(
            upstreams, principal, upstreams.content.GetItem, pb.GetItemRequest(id=item_id)
        )
    except (NotFound, InvalidArgument):
        raise PageError(
            404, "No such item", "This item does not exist, or you may not see it."
        ) from None


def _item_summary(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status,
        "version": item.version,
        "updated_at": item.updated_at,
        "publish_at": item.scheduled_publish_at if item.HasField("scheduled_publish_at") else None,
        "unpublish_at": (
            item.scheduled_unpublish_at if item.HasField("scheduled_unpublish_at") else None
        ),
        "schedule_error": item.schedule_error,
    }


@router.post("/admin/content/{collection}/{item_id}")
async def update_item(
    request: Request,
    collection: str,
    item_id: str,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
) -> Response:
    data = await form(request, principal)
    found = await _collection(upstreams, principal, collection)
    document, problems, title, slug = _posted(found, data)
    action = str(data.get("action") or "save")
    version = _version(data)
    current = await _item(upstreams, principal, item_id)
    summary = {**_item_summary(current), "version": version}
    # The form again, with what was typed.
    again = partial(
        _editor, request, principal, found, item=summary, values=document, title=title, slug=slug
    )
    if problems:
        return again(problems=problems, error=_INVALID, status=400)
    change = pb.UpdateItemRequest(
        id=item_id,
        title=title,
        slug=slug or current.slug,
        data_json=orjson.dumps(document),
        replace_data=True,
        expected_version=version,
    )
    if action in ("publish", "unpublish", "archive"):
        change.status = {"publish": "published", "unpublish": "draft", "archive": "archived"}[
            action
        ]
    try:
        await as_user(upstreams, principal, upstreams.content.UpdateItem, change)
    except Conflict as exc:
        if not any(d.field == "version" for d in exc.details):
            return again(problems=_problems(exc), error=exc.message, status=409)
        theirs = await _item(upstreams, principal, item_id)
        return again(
            error="Someone else saved this item after you opened it. Your changes are below, "
            "theirs beside them: copy what you want to keep, then save again.",
            status=409,
            conflict={
                "version": theirs.version,
                "title": theirs.title,
                "data": orjson.dumps(
                    orjson.loads(theirs.data_json or b"{}"), option=orjson.OPT_INDENT_2
                ).decode(),
            },
        )
    except (InvalidArgument, AlreadyExists, PermissionDenied) as exc:
        return again(problems=_problems(exc), error=exc.message, status=exc.http_status)
    return RedirectResponse(f"/admin/content/{quote(collection)}/{item_id}?saved=1", 303)


# -- schedule -------------------------------------------------------------------------------------
def _epoch_ms(raw: str) -> int | None:
    """A datetime-local value (`YYYY-MM-DDTHH:MM`, read as UTC) in epoch milliseconds."""
    if not raw.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise PageError(400, "Not a time", f"{raw!r} is not a date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


@router.post("/admin/content/{collection}/{item_id}/schedule")
async def schedule_item(
    request: Request,
    collection: str,
    item_id: str,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
) -> Response:
    data = await form(request, principal)
    change = pb.ScheduleItemRequest(id=item_id, expected_version=_version(data))
    if data.get("action") == "cancel":
        change.cancel = True
    else:
        publish_at = _epoch_ms(str(data.get("publish_at") or ""))
        unpublish_at = _epoch_ms(str(data.get("unpublish_at") or ""))
        if publish_at is None and unpublish_at is None:
            raise PageError(400, "Nothing to schedule", "Give a time to publish or unpublish at.")
        if publish_at is not None:
            change.publish_at = publish_at
        if unpublish_at is not None:
            change.unpublish_at = unpublish_at
    try:
        await as_user(upstreams, principal, upstreams.content.ScheduleItem, change)
    except (InvalidArgument, Conflict, PermissionDenied) as exc:
        raise PageError(exc.http_status, "Not scheduled", exc.message) from None
    return RedirectResponse(f"/admin/content/{quote(collection)}/{item_id}?saved=1", 303)


def _version(data: FormData) -> int:
    try:
        return int(str(data.get("version") or ""))
    except ValueError:
        raise PageError(
            400, "Form incomplete", "The form lost its version; reload the page."
        ) from None


# -- revisions ------------------------------------------------------------------------------------
@router.get("/admin/content/{collection}/{item_id}/revisions")
async def revisions_page(
    request: Request,
    collection: str,
    item_id: str,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
) -> Response:
    found = await _collection(upstreams, principal, collection)
    item = await _item(upstreams, principal, item_id)
    listed = await as_user(
        upstreams,
        principal,
        upstreams.content.ListRevisions,
        pb.ListRevisionsRequest(item_id=item_id, page=PageRequest(limit=100)),
    )
    return render(
        request,
        "revisions.html",
        principal,
        collection=collection_json(found),
        item=_item_summary(item),
        title=item.title,
        revisions=[
            {
                "version": r.version,
                "action": r.action,
                "status": r.status,
                "title": r.title,
                "created_at": r.created_at,
                "author_id": r.author_id,
            }
            for r in listed.revisions
        ],
    )


@router.get("/admin/content/{collection}/{item_id}/revisions/{version}")
async def revision_page(
    request: Request,
    collection: str,
    item_id: str,
    version: int,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
) -> Response:
    found = await _collection(upstreams, principal, collection)
    item = await _item(upstreams, principal, item_id)
    try:
        old = await as_user(
            upstreams,
            principal,
            upstreams.content.GetRevision,
            pb.GetRevisionRequest(item_id=item_id, version=version),
        )
    except NotFound:
        raise PageError(404, "No such revision", f"This item has no version {version}.") from None
    then = {"title": old.title, "slug": old.slug, "status": old.status}
    now = {"title": item.title, "slug": item.slug, "status": item.status}
    old_data = orjson.loads(old.data_json or b"{}")
    new_data = orjson.loads(item.data_json or b"{}")
    rows = [
        {"field": k, "then": then[k], "now": now[k], "changed": then[k] != now[k]} for k in then
    ]
    for key in sorted(set(old_data) | set(new_data)):
        before, after = old_data.get(key), new_data.get(key)
        rows.append(
            {
                "field": f"data.{key}",
                "then": _shown(before),
                "now": _shown(after),
                "changed": before != after,
            }
        )
    return render(
        request,
        "revision.html",
        principal,
        collection=collection_json(found),
        item=_item_summary(item),
        title=item.title,
        version=version,
        action=old.action,
        created_at=old.created_at,
        rows=rows,
    )


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@router.post("/admin/content/{collection}/{item_id}/revisions/{version}/restore")
async def restore_revision(
    request: Request,
    collection: str,
    item_id: str,
    version: int,
    upstreams: UpstreamsDep,
    principal: UpdatesContent,
) -> Response:
    data = await form(request, principal)
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.content.RestoreRevision,
            pb.RestoreRevisionRequest(
                item_id=item_id, version=version, expected_version=_version(data)
            ),
        )
    except Conflict as exc:
        raise PageError(409, "Not restored", exc.message) from None
    except (InvalidArgument, NotFound, PermissionDenied) as exc:
        raise PageError(exc.http_status, "Not restored", exc.message) from None
    return RedirectResponse(f"/admin/content/{quote(collection)}/{item_id}?saved=1", 303)


# -- pickers --------------------------------------------------------------------------------------
ReadsContent = Annotated[Principal, Depends(PageAccess("content.read"))]
ReadsMedia = Annotated[Principal, Depends(PageAccess("media.read"))]
SearchParam = Annotated[str | None, Query(max_length=200)]
ForParam = Annotated[str, Query(max_length=210, pattern=r"^field-[A-Za-z_][A-Za-z0-9_]*$")]


@router.get("/admin/pick/content/{collection}")
async def pick_item(
    request: Request,
    collection: str,
    upstreams: UpstreamsDep,
    principal: ReadsContent,
    field: ForParam,
    q: SearchParam = None,
) -> Response:
    """Items of `collection` matching `q`, as buttons that fill the editor's `field`."""
    query = [("sort", "-updated_at"), ("fields", "id,title,status")]
    if q:
        query = [("search", q), ("fields", "id,title,status")]
    try:
        reply = await as_user(
            upstreams,
            principal,
            upstreams.content.ListItems,
            pb.ListItemsRequest(
                collection=collection,
                page=PageRequest(limit=10),
                query_json=parse_list_query(query).to_bytes(),
            ),
        )
    except (NotFound, InvalidArgument):
        reply = pb.ListItemsResponse()
    choices = [
        {"value": i.id, "label": i.title, "note": i.status, "image": "", "alt": ""}
        for i in reply.items
    ]
    return render(request, "pick.html", principal, field=field, choices=choices, q=q or "")


@router.get("/admin/pick/media")
async def pick_media(
    request: Request,
    upstreams: UpstreamsDep,
    principal: ReadsMedia,
    field: ForParam,
    q: SearchParam = None,
    type: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Files matching `q` (and `type`), as buttons that fill the editor's `field`."""
    reply = await as_user(
        upstreams,
        principal,
        upstreams.media.ListMedia,
        media_pb2.ListMediaRequest(
            page=PageRequest(limit=12), search=q or "", mime_type=type, sort="-uploaded_at"
        ),
    )
    choices = [
        {
            "value": m.id,
            "label": m.filename,
            "note": m.mime_type,
            "image": file_path(m.id, m.filename) if m.mime_type.startswith("image/") else "",
            "alt": m.alt,
        }
        for m in reply.media
    ]
    return render(request, "pick.html", principal, field=field, choices=choices, q=q or "")


# -- bulk actions ---------------------------------------------------------------------------------
BULK_LIMIT = 100
_BULK_STATUS = {"publish": "published", "unpublish": "draft", "archive": "archived"}


@bulk_router.post("/admin/content/{collection}/bulk")
async def bulk_action(
    request: Request,
    collection: str,
    upstreams: UpstreamsDep,
    principal: ReadsContent,
) -> Response:
    """Publish, unpublish, archive or delete the chosen items, each as its own call (the
    service checks each one's permission); the list then says what was done and what not."""
    data = await form(request, principal)
    action = str(data.get("action") or "")
    ids = [str(i) for i in data.getlist("id")][:BULK_LIMIT]
    if action not in (*_BULK_STATUS, "delete"):
        raise PageError(400, "Unknown action", "Choose publish, unpublish, archive or delete.")
    if not ids:
        raise PageError(400, "Nothing chosen", "Tick the items to act on first.")
    method: Any
    calls: list[Any]
    if action == "delete":
        method, calls = upstreams.content.DeleteItem, [pb.DeleteItemRequest(id=i) for i in ids]
    else:
        method = upstreams.content.UpdateItem
        calls = [pb.UpdateItemRequest(id=i, status=_BULK_STATUS[action]) for i in ids]
    verb = {"publish": "published", "unpublish": "unpublished", "archive": "archived"}.get(
        action, "deleted"
    )
    outcome = await each(upstreams, principal, method, calls, verb)
    return RedirectResponse(
        f"/admin/content/{quote(collection)}?{urlencode({'done': outcome})}", 303
    )


# -- preview --------------------------------------------------------------------------------------
SignedIn = Annotated[Principal, Depends(PageAccess(AUTHENTICATED))]
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})


@router.post("/admin/preview/{kind}")
async def preview(request: Request, kind: str, principal: SignedIn) -> Response:
    """A markdown or richtext field's text as it will be read: markdown rendered without raw
    HTML, then, like richtext, cleaned by nh3's allowlist (what the content service keeps)."""
    data = await form(request, principal)
    if kind not in ("markdown", "richtext"):
        raise PageError(404, "No preview", "Markdown and richtext fields have a preview.")
    # The button sends its form; `preview_of` names the field to render.
    field = str(data.get("preview_of") or "")
    source = str(data.get(field) or "")[:1_000_000] if field.startswith("data.") else ""
    markup = _MARKDOWN.render(source) if kind == "markdown" else source
    return HTMLResponse(
        f'<div class="rendered">{nh3.clean(markup)}</div>',
        headers={"Cache-Control": "no-store"},
    )
