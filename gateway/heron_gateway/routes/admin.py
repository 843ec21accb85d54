"""SonicJS's admin JSON routes: who may call them, their shapes, and `/admin/api/collections`
(the cache plugin's `/admin/cache` routes are in `routes.admin_cache`).

Thin aliases for SonicJS's tooling: the same gRPC calls and cache objects as Heron's own routes
(routes/collections.py, routes/cache.py), with the same permissions, in SonicJS's shapes
(`{"success": true, ..., "timestamp"}`; errors carry `"success": false`, see errors.py).

The admin area is for signed-in callers only, whatever the `public` role may read: anonymous
callers get 401, or, from a browser (`Accept: text/html`), a redirect to the sign-in page.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, TypeVar

import orjson
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends, Path, Query, Request
from heron_common.errors import (
    ErrorDetail,
    InvalidArgument,
    Unauthenticated,
    authentication_required,
)
from heron_common.jsondoc import check_json_document
from heron_common.rpc.client import UnaryMethod, call
from heron_common.security.permissions import Principal
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from heron_gateway.render import collection_json, json_response, now_iso
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    AdminCollectionCreate,
    AdminCollectionUpdate,
    ErrorBody,
)
from heron_gateway.security import Access
from heron_gateway.upstreams import Upstreams, UpstreamsDep

# -- who may call -------------------------------------------------------------------------------
SIGN_IN_URL = "/auth/login?error=Please%20login%20to%20access%20the%20admin%20area"


class AdminAccess(Access):
    """`Access(need)` for the admin area: the caller must be signed in as well (SonicJS's admin
    is never open to anonymous callers), and a browser without valid credentials is sent to the
    sign-in page instead of getting a 401."""

    async def __call__(self, request: Request) -> Principal:
        try:
            principal = await super().__call__(request)
            if principal is None or principal.anonymous:
                raise authentication_required("the admin area is for signed-in users")
            return principal
        except Unauthenticated:
            if "text/html" in request.headers.get("accept", ""):
                raise HTTPException(
                    302,
                    detail="Please login to access the admin area",
                    headers={"Location": SIGN_IN_URL},
                ) from None
            raise


CanReadCollections = Annotated[Principal, Depends(AdminAccess("collections.read"))]
CanCreateCollections = Annotated[Principal, Depends(AdminAccess("collections.create"))]
CanUpdateCollections = Annotated[Principal, Depends(AdminAccess("collections.update"))]
CanDeleteCollections = Annotated[Principal, Depends(AdminAccess("collections.delete"))]
CanManageCache = Annotated[Principal, Depends(AdminAccess("cache.manage"))]


class AdminErrorBody(ErrorBody):
    success: bool = Field(default=False, description="`false` (SonicJS's admin field).")


ADMIN_TAGS: list[str | Enum] = ["admin (SonicJS)"]
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{
        status: {**response, "model": AdminErrorBody}
        for status, response in ERROR_RESPONSES.items()
    },
    302: {
        "description": "A browser (`Accept: text/html`) without valid credentials: "
        "to the sign-in page."
    },
}
router = APIRouter(tags=ADMIN_TAGS, responses=ADMIN_RESPONSES)


def ok(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """SonicJS's success envelope: `success`, the body, and when it was produced."""
    return json_response({"success": True, **body, "timestamp": now_iso()}, status, headers)


R = TypeVar("R")


async def rpc(
    upstreams: Upstreams, principal: Principal, method: UnaryMethod[R], request: Any
) -> R:
    """A content service call made as the caller, as Heron's REST routes make it."""
    return await call(
        method,
        request,
        timeout=upstreams.settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )


# -- collections: shapes ------------------------------------------------------------------------
class AdminCollection(BaseModel):
    id: str
    name: str
    display_name: str
    displayName: str = Field(description="`display_name` again, as SonicJS's create names it.")
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="The field schema.")
    is_active: bool = Field(description="Always `true`: Heron has no inactive collections.")
    managed: bool
    field_count: int = Field(description="How many fields `schema` declares.")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")


class AdminField(BaseModel):
    """One field of the schema, as a row of SonicJS's `content_fields` table."""

    id: str = Field(description="`<collection id>:<field name>`.")
    field_name: str
    field_type: str
    field_label: str = Field(description="The field's `title`, else its name.")
    field_options: dict[str, Any] = Field(description="The field's other rules.")
    field_order: int = Field(description="1 for the first field.")
    is_required: bool


class AdminCollectionDetail(AdminCollection):
    fields: list[AdminField]


class AdminCollectionDetailReply(AdminCollectionDetail):
    success: bool
    data: AdminCollectionDetail
    timestamp: str


class AdminCollectionList(BaseModel):
    success: bool
    data: list[AdminCollection]
    count: int
    timestamp: str


class AdminCollectionCreated(BaseModel):
    success: bool
    data: AdminCollection
    id: str
    name: str
    displayName: str
    description: str
    created_at: int
    timestamp: str


class AdminCollectionUpdated(BaseModel):
    success: bool
    message: str
    data: AdminCollection
    timestamp: str


class AdminMessage(BaseModel):
    success: bool
    message: str
    timestamp: str


def _schema(c: pb.Collection) -> dict[str, Any]:
    parsed = orjson.loads(c.schema_json or b"{}")
    return parsed if isinstance(parsed, dict) else {}


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else {}


def _admin_collection(c: pb.Collection) -> dict[str, Any]:
    """Heron's collection JSON with SonicJS's admin fields (boolean `is_active`, `field_count`)."""
    return {
        **collection_json(c),
        "displayName": c.display_name,
        "is_active": True,
        "field_count": len(_properties(_schema(c))),
    }


def _fields(c: pb.Collection) -> list[dict[str, Any]]:
    """The schema's properties as SonicJS's field rows, in declaration order."""
    schema = _schema(c)
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    rows = []
    for order, (name, spec) in enumerate(_properties(schema).items(), start=1):
        spec = spec if isinstance(spec, dict) else {}
        title = spec.get("title")
        rows.append(
            {
                "id": f"{c.id}:{name}",
                "field_name": name,
                "field_type": str(spec.get("type", "string")),
                "field_label": title if isinstance(title, str) and title else name,
                "field_options": {
                    k: v for k, v in spec.items() if k not in ("type", "title", "required")
                },
                "field_order": order,
                "is_required": name in required_names or spec.get("required") is True,
            }
        )
    return rows


# -- collections: routes ------------------------------------------------------------------------
@router.get(
    "/admin/api/collections", response_model=AdminCollectionList, summary="List collections"
)
async def list_collections(
    upstreams: UpstreamsDep,
    principal: CanReadCollections,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the name or display name.")
    ] = None,
    includeInactive: Annotated[
        bool | None, Query(description="Accepted; every Heron collection is active.")
    ] = None,
) -> Response:
    """Every collection, newest first (SonicJS's admin order), optionally filtered by `search`
    (case-insensitive, on the name or the display name)."""
    reply = await rpc(
        upstreams, principal, upstreams.content.ListCollections, pb.ListCollectionsRequest()
    )
    wanted = (search or "").casefold()
    found = [
        c
        for c in reply.collections
        if wanted in c.name.casefold() or wanted in c.display_name.casefold()
    ]
    found.sort(key=lambda c: c.created_at, reverse=True)
    data = [_admin_collection(c) for c in found]
    return ok({"data": data, "count": len(data)})


@router.get(
    "/admin/api/collections/{id}",
    response_model=AdminCollectionDetailReply,
    summary="Get a collection with its fields",
)
async def get_collection(
    id: Annotated[str, Path(description="The collection's id or name.")],
    upstreams: UpstreamsDep,
    principal: CanReadCollections,
) -> Response:
    """One collection, flat as SonicJS returns it, with its schema's fields as `fields`; the
    same object again under `data`."""
    reply = await rpc(
        upstreams,
        principal,
        upstreams.content.GetCollection,
        pb.GetCollectionRequest(collection=id),
    )
    detail = {**_admin_collection(reply), "fields": _fields(reply)}
    return ok({**detail, "data": detail})


@router.post(
    "/admin/api/collections",
    response_model=AdminCollectionCreated,
    status_code=201,
    summary="Create a collection",
)
async def create_collection(
    body: AdminCollectionCreate, upstreams: UpstreamsDep, principal: CanCreateCollections
) -> Response:
    """Create a collection (`displayName` or `display_name` is required). A name already taken
    is a 409, as in Heron's REST API (SonicJS answers 400)."""
    display_name = body.displayName or body.display_name
    if not display_name:
        raise InvalidArgument(
            "Validation failed",
            [ErrorDetail("displayName", "Either displayName or display_name is required")],
        )
    check_json_document(body.schema_, "schema")
    request = pb.CreateCollectionRequest(
        name=body.name,
        display_name=display_name,
        description=body.description,
        schema_json=orjson.dumps(body.schema_) if body.schema_ is not None else b"",
    )
    reply = await rpc(upstreams, principal, upstreams.content.CreateCollection, request)
    created = _admin_collection(reply)
    return ok(
        {
            "data": created,
            "id": reply.id,
            "name": reply.name,
            "displayName": reply.display_name,
            "description": reply.description,
            "created_at": reply.created_at,
        },
        status=201,
        headers={"Location": f"/api/collections/{reply.name}"},
    )


@router.patch(
    "/admin/api/collections/{id}",
    response_model=AdminCollectionUpdated,
    summary="Update a collection",
)
async def update_collection(
    id: Annotated[str, Path(description="The collection's id or name.")],
    body: AdminCollectionUpdate,
    upstreams: UpstreamsDep,
    principal: CanUpdateCollections,
) -> Response:
    """Change the display name (`display_name` or `displayName`), the description or the field
    schema. `is_active: false` is refused: a Heron collection is deleted, or hidden by taking
    `collections.read` from a role, never deactivated."""
    if not body.model_fields_set:
        raise InvalidArgument("No fields to update")
    if body.is_active is False:
        raise InvalidArgument(
            "Heron collections cannot be deactivated: delete the collection, or take "
            "`collections.read` from the roles that should not see it.",
            [ErrorDetail("is_active", "only true is accepted")],
        )
    request = pb.UpdateCollectionRequest(collection=id, confirm=body.confirm)
    display_name = body.display_name if body.display_name is not None else body.displayName
    if display_name is not None:
        request.display_name = display_name
    if body.description is not None:
        request.description = body.description
    if body.schema_ is not None:
        check_json_document(body.schema_, "schema")
        request.schema_json = orjson.dumps(body.schema_)
    if display_name is not None or body.description is not None or body.schema_ is not None:
        reply = await rpc(upstreams, principal, upstreams.content.UpdateCollection, request)
    else:  # only `is_active: true` or nulls: nothing changes
        reply = await rpc(
            upstreams,
            principal,
            upstreams.content.GetCollection,
            pb.GetCollectionRequest(collection=id),
        )
    return ok({"message": "Collection updated successfully", "data": _admin_collection(reply)})


@router.delete(
    "/admin/api/collections/{id}", response_model=AdminMessage, summary="Delete a collection"
)
async def delete_collection(
    id: Annotated[str, Path(description="The collection's id or name.")],
    upstreams: UpstreamsDep,
    principal: CanDeleteCollections,
) -> Response:
    """Delete an empty collection; one that still has items is a 409 (SonicJS answers 400)."""
    await rpc(
        upstreams,
        principal,
        upstreams.content.DeleteCollection,
        pb.DeleteCollectionRequest(collection=id),
    )
    return ok({"message": "Collection deleted successfully"})
