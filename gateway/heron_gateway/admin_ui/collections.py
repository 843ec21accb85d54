"""The admin's collection editor: a field builder for a new collection and for an existing one.

Each field is a row (name, type, label, required, and what its type needs: options, the
referenced collection, the media types accepted, several values or one); rows are added,
moved and removed by the form's own buttons, so the builder works without script. Options the
builder does not show (a `minimum`, a `pattern`, a `default`, …) travel with the row and are
kept. A change that would remove or convert data items hold is refused by the content service
(409, saying how many items); the page then shows that and asks to confirm. A collection
managed in code is shown read-only, with where it comes from.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends, Request
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from heron_common.security.permissions import Principal
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from heron_gateway.admin_ui.pages import PageAccess, PageError, as_user, form, render
from heron_gateway.render import collection_json
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(include_in_schema=False)
CreatesCollections = Annotated[Principal, Depends(PageAccess("collections.create"))]
ReadsCollections = Annotated[Principal, Depends(PageAccess("collections.read"))]
UpdatesCollections = Annotated[Principal, Depends(PageAccess("collections.update"))]

FIELD_TYPES = (
    "string",
    "text",
    "textarea",
    "markdown",
    "richtext",
    "email",
    "url",
    "slug",
    "color",
    "number",
    "integer",
    "boolean",
    "date",
    "datetime",
    "select",
    "radio",
    "multiselect",
    "reference",
    "media",
    "array",
    "object",
    "json",
)
WITH_OPTIONS = {"select", "radio", "multiselect"}
MAX_ROWS = 200
# What a row edits; the rest of a field's definition rides along in its `spec`.
_ROW_KEYS = {
    "type",
    "title",
    "required",
    "options",
    "enum",
    "collection",
    "collections",
    "accept",
    "multiple",
}


def _rows_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required") or [])
    rows = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        options = spec.get("options") or spec.get("enum") or []
        rows.append(
            {
                "name": name,
                "type": str(spec.get("type") or "string"),
                "title": str(spec.get("title") or ""),
                "required": bool(spec.get("required")) or name in required,
                "options": ", ".join(
                    str(o.get("value") if isinstance(o, dict) else o) for o in options
                ),
                "collection": str(
                    spec.get("collection") or next(iter(spec.get("collections") or []), "")
                ),
                "accept": str(spec.get("accept") or ""),
                "multiple": bool(spec.get("multiple")),
                "spec": orjson.dumps(
                    {k: v for k, v in spec.items() if k not in _ROW_KEYS}
                ).decode(),
            }
        )
    return rows


def _blank_row() -> dict[str, Any]:
    return {
        "name": "",
        "type": "string",
        "title": "",
        "required": False,
        "options": "",
        "collection": "",
        "accept": "",
        "multiple": False,
        "spec": "{}",
    }


def _rows_from(data: FormData) -> list[dict[str, Any]]:
    """The rows as the form posted them, in their order."""
    rows = []
    for index in range(MAX_ROWS):
        prefix = f"fields.{index}."
        if prefix + "type" not in data:
            break
        rows.append(
            {
                "name": str(data.get(prefix + "name") or "").strip(),
                "type": str(data.get(prefix + "type") or "string"),
                "title": str(data.get(prefix + "title") or "").strip(),
                "required": data.get(prefix + "required") == "on",
                "options": str(data.get(prefix + "options") or ""),
                "collection": str(data.get(prefix + "collection") or "").strip(),
                "accept": str(data.get(prefix + "accept") or "").strip(),
                "multiple": data.get(prefix + "multiple") == "on",
                "spec": str(data.get(prefix + "spec") or "{}"),
            }
        )
    return rows


def _rearranged(rows: list[dict[str, Any]], action: str) -> list[dict[str, Any]] | None:
    """The rows after an add, move or remove button; None for a save."""
    verb, _, where = action.partition(":")
    if verb == "add":
        return [*rows, _blank_row()]
    if verb not in ("up", "down", "remove") or not where.isdigit():
        return None
    index = int(where)
    if not 0 <= index < len(rows):
        return rows
    rows = list(rows)
    if verb == "remove":
        del rows[index]
    elif verb == "up" and index > 0:
        rows[index - 1], rows[index] = rows[index], rows[index - 1]
    elif verb == "down" and index < len(rows) - 1:
        rows[index + 1], rows[index] = rows[index], rows[index + 1]
    return rows


def _schema(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The schema the rows describe, and what is wrong with them before the service looks."""
    properties: dict[str, Any] = {}
    problems = []
    for number, row in enumerate(rows, 1):
        name = row["name"]
        if not name:
            problems.append(f"Field {number} needs a name.")
            continue
        if name in properties:
            problems.append(f"Two fields are named {name!r}.")
            continue
        try:
            spec = orjson.loads(row["spec"] or "{}")
        except orjson.JSONDecodeError:
            spec = {}
        spec = (
            {k: v for k, v in spec.items() if k not in _ROW_KEYS} if isinstance(spec, dict) else {}
        )
        spec["type"] = row["type"]
        if row["title"]:
            spec["title"] = row["title"]
        if row["required"]:
            spec["required"] = True
        if row["type"] in WITH_OPTIONS:
            spec["options"] = [o.strip() for o in row["options"].split(",") if o.strip()]
        if row["type"] == "reference":
            spec["collection"] = row["collection"]
        if row["type"] == "media" and row["accept"]:
            spec["accept"] = row["accept"]
        if row["type"] in ("reference", "media") and row["multiple"]:
            spec["multiple"] = True
        properties[name] = spec
    return {"properties": properties}, problems


def _page(
    request: Request,
    principal: Principal,
    *,
    collection: dict[str, Any] | None,
    name: str,
    display_name: str,
    description: str,
    rows: list[dict[str, Any]],
    targets: list[str],
    problems: list[str] | None = None,
    error: str = "",
    notice: str = "",
    confirm: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "collection.html",
        principal,
        status=status,
        collection=collection,
        name=name,
        display_name=display_name,
        description=description,
        rows=rows,
        types=FIELD_TYPES,
        with_options=WITH_OPTIONS,
        targets=targets,
        problems=problems or [],
        error=error,
        notice=notice,
        confirm=confirm,
    )


async def _targets(upstreams: Upstreams, principal: Principal) -> list[str]:
    """The collections a reference field may point at."""
    listed = await as_user(
        upstreams, principal, upstreams.content.ListCollections, pb.ListCollectionsRequest()
    )
    return [c.name for c in listed.collections]


def _details(exc: Any) -> list[str]:
    return [f"{d.field}: {d.message}" if d.field else d.message for d in exc.details]


@router.get("/admin/collections/new")
async def new_collection_page(
    request: Request, upstreams: UpstreamsDep, principal: CreatesCollections
) -> Response:
    return _page(
        request,
        principal,
        collection=None,
        name="",
        display_name="",
        description="",
        rows=[_blank_row()],
        targets=await _targets(upstreams, principal),
    )


@router.post("/admin/collections/new")
async def create_collection(
    request: Request, upstreams: UpstreamsDep, principal: CreatesCollections
) -> Response:
    data = await form(request, principal)
    name = str(data.get("name") or "").strip()
    display_name = str(data.get("display_name") or "").strip()
    description = str(data.get("description") or "").strip()
    rows = _rows_from(data)
    action = str(data.get("action") or "save")
    # The page again, with what was posted.
    again = partial(
        _page,
        request,
        principal,
        collection=None,
        name=name,
        display_name=display_name,
        description=description,
        targets=await _targets(upstreams, principal),
    )
    rearranged = _rearranged(rows, action)
    if rearranged is not None:
        return again(rows=rearranged)
    schema, problems = _schema(rows)
    if not name:
        problems.insert(0, "Give the collection a name.")
    if problems:
        return again(
            rows=rows,
            problems=problems,
            error="Validation failed.",
            status=400,
        )
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.content.CreateCollection,
            pb.CreateCollectionRequest(
                name=name,
                display_name=display_name,
                description=description,
                schema_json=orjson.dumps(schema),
            ),
        )
    except (InvalidArgument, AlreadyExists, Conflict, PermissionDenied) as exc:
        return again(
            rows=rows,
            problems=_details(exc),
            error=exc.message,
            status=exc.http_status,
        )
    return RedirectResponse(f"/admin/collections/{quote(name)}?saved=1", 303)


async def _found(upstreams: Upstreams, principal: Principal, name: str) -> Any:
    try:
        return await as_user(
            upstreams,
            principal,
            upstreams.content.GetCollection,
            pb.GetCollectionRequest(collection=name),
        )
    except NotFound:
        raise PageError(404, "No such collection", f"There is no collection {name!r}.") from None


@router.get("/admin/collections/{name}")
async def collection_page(
    request: Request,
    name: str,
    upstreams: UpstreamsDep,
    principal: ReadsCollections,
    saved: str | None = None,
) -> Response:
    found = await _found(upstreams, principal, name)
    return _page(
        request,
        principal,
        collection=collection_json(found),
        name=found.name,
        display_name=found.display_name,
        description=found.description,
        rows=_rows_of(orjson.loads(found.schema_json or b"{}")),
        targets=await _targets(upstreams, principal),
        notice="Saved." if saved else "",
    )


@router.post("/admin/collections/{name}")
async def update_collection(
    request: Request, name: str, upstreams: UpstreamsDep, principal: UpdatesCollections
) -> Response:
    data = await form(request, principal)
    found = await _found(upstreams, principal, name)
    if found.managed:
        raise PageError(
            409, "Managed in code", "This collection is defined in code: change it there."
        )
    display_name = str(data.get("display_name") or "").strip()
    description = str(data.get("description") or "").strip()
    rows = _rows_from(data)
    action = str(data.get("action") or "save")
    # The page again, with what was posted.
    again = partial(
        _page,
        request,
        principal,
        collection=collection_json(found),
        name=found.name,
        display_name=display_name,
        description=description,
        targets=await _targets(upstreams, principal),
    )
    rearranged = _rearranged(rows, action)
    if rearranged is not None:
        return again(rows=rearranged)
    schema, problems = _schema(rows)
    if problems:
        return again(
            rows=rows,
            problems=problems,
            error="Validation failed.",
            status=400,
        )
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.content.UpdateCollection,
            pb.UpdateCollectionRequest(
                collection=found.id,
                display_name=display_name,
                description=description,
                schema_json=orjson.dumps(schema),
                confirm=action == "confirm",
            ),
        )
    except Conflict as exc:
        return again(
            rows=rows,
            problems=_details(exc),
            error=exc.message,
            status=409,
            confirm="This change would remove or convert data items hold (their revisions keep "
            "the old values). Confirm to apply it.",
        )
    except (InvalidArgument, PermissionDenied) as exc:
        return again(
            rows=rows,
            problems=_details(exc),
            error=exc.message,
            status=exc.http_status,
        )
    return RedirectResponse(f"/admin/collections/{quote(found.name)}?saved=1", 303)
