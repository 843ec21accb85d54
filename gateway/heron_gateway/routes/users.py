"""Administration of accounts: users, roles and their permissions, API tokens, signing keys."""

from __future__ import annotations

from typing import Annotated

from cms.auth.v1 import auth_pb2 as pb
from cms.common.v1.common_pb2 import PageRequest
from fastapi import APIRouter, Depends, Query
from heron_common.limits import DEFAULT_USERS_PAGE_SIZE, MAX_USERS_PAGE_SIZE
from heron_common.rpc.client import call
from heron_common.security.permissions import Principal
from starlette.responses import Response

from heron_gateway.render import api_token_json, json_response, now_iso, role_json, user_json
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    ApiTokenCreate,
    ApiTokenEnvelope,
    ApiTokenList,
    RoleEnvelope,
    RoleList,
    RoleUpdate,
    Success,
    UserCreate,
    UserEnvelope,
    UserList,
    UserUpdate,
    new_account,
    profile_changes,
)
from heron_gateway.security import Access, SignedIn
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)

CanReadUsers = Annotated[Principal, Depends(Access("users.read"))]
CanCreateUsers = Annotated[Principal, Depends(Access("users.create"))]
CanUpdateUsers = Annotated[Principal, Depends(Access("users.update"))]
CanDeleteUsers = Annotated[Principal, Depends(Access("users.delete"))]
CanUpdateSettings = Annotated[Principal, Depends(Access("settings.update"))]


@router.get("/api/users", response_model=UserList, summary="List users")
async def list_users(
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanReadUsers,
    limit: Annotated[int, Query(ge=1, le=MAX_USERS_PAGE_SIZE)] = DEFAULT_USERS_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    reply = await call(
        upstreams.auth.ListUsers,
        pb.ListUsersRequest(page=PageRequest(limit=limit, offset=offset)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [user_json(u) for u in reply.users]
    meta = {
        "count": len(data),
        "total": reply.page.total,
        "limit": limit,
        "offset": offset,
        "timestamp": now_iso(),
    }
    return json_response({"data": data, "meta": meta})


@router.post("/api/users", response_model=UserEnvelope, status_code=201, summary="Create a user")
async def create_user(
    body: UserCreate, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanCreateUsers
) -> Response:
    """Only roles whose permissions the caller holds can be given."""
    reply = await call(
        upstreams.auth.CreateUser,
        pb.CreateUserRequest(**new_account(body), role=body.role),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response(
        {"data": user_json(reply)}, status=201, headers={"Location": f"/api/users/{reply.id}"}
    )


@router.get("/api/users/{user_id}", response_model=UserEnvelope, summary="Get a user")
async def get_user(
    user_id: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanReadUsers
) -> Response:
    reply = await call(
        upstreams.auth.GetUser,
        pb.GetUserRequest(id=user_id),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": user_json(reply)})


@router.patch("/api/users/{user_id}", response_model=UserEnvelope, summary="Change a user")
async def update_user(
    user_id: str,
    body: UserUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdateUsers,
) -> Response:
    """A new role, status or password ends the user's sessions within seconds."""
    request = pb.UpdateUserRequest(id=user_id, **profile_changes(body))
    for name in ("role", "status", "password"):
        value = getattr(body, name)
        if value is not None:
            setattr(request, name, value)
    reply = await call(
        upstreams.auth.UpdateUser,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": user_json(reply)})


@router.delete("/api/users/{user_id}", response_model=Success, summary="Delete a user")
async def delete_user(
    user_id: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanDeleteUsers
) -> Response:
    await call(
        upstreams.auth.DeleteUser,
        pb.DeleteUserRequest(id=user_id),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"success": True})


@router.get("/api/roles", response_model=RoleList, summary="List roles")
async def list_roles(
    upstreams: UpstreamsDep, settings: SettingsDep, principal: CanReadUsers
) -> Response:
    reply = await call(
        upstreams.auth.ListRoles,
        pb.ListRolesRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": [role_json(r) for r in reply.roles]})


@router.put("/api/roles/{name}", response_model=RoleEnvelope, summary="Set a role's permissions")
async def update_role(
    name: str,
    body: RoleUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdateUsers,
) -> Response:
    """Takes effect on every signed-in request within seconds. `admin` cannot be changed;
    `public` is what anonymous callers may do."""
    request = pb.UpdateRoleRequest(name=name, permissions=body.permissions)
    if body.description is not None:
        request.description = body.description
    reply = await call(
        upstreams.auth.UpdateRole,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": role_json(reply)})


@router.get("/api/tokens", response_model=ApiTokenList, summary="Your API tokens")
async def list_api_tokens(
    upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn
) -> Response:
    reply = await call(
        upstreams.auth.ListApiTokens,
        pb.ListApiTokensRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": [api_token_json(t) for t in reply.api_tokens]})


@router.post(
    "/api/tokens", response_model=ApiTokenEnvelope, status_code=201, summary="Create an API token"
)
async def create_api_token(
    body: ApiTokenCreate, upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn
) -> Response:
    """The token is in this answer only; it is stored as a hash. Send it as
    `Authorization: Bearer heron_…`."""
    reply = await call(
        upstreams.auth.CreateApiToken,
        pb.CreateApiTokenRequest(
            name=body.name, permissions=body.permissions, expires_at=body.expires_at or None
        ),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = {**api_token_json(reply.api_token), "token": reply.token}
    return json_response({"data": data}, status=201, headers={"Cache-Control": "no-store"})


@router.delete("/api/tokens/{token_id}", response_model=Success, summary="Revoke an API token")
async def revoke_api_token(
    token_id: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: SignedIn
) -> Response:
    """Stops working everywhere within seconds."""
    await call(
        upstreams.auth.RevokeApiToken,
        pb.RevokeApiTokenRequest(id=token_id),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"success": True})


@router.post("/api/auth/keys/rotate", summary="Rotate the signing key")
async def rotate_signing_key(
    upstreams: UpstreamsDep, settings: SettingsDep, principal: CanUpdateSettings
) -> Response:
    """New access tokens are signed with a new key; tokens signed with the old one stay valid
    until they expire."""
    reply = await call(
        upstreams.auth.RotateSigningKey,
        pb.RotateSigningKeyRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return Response(reply.jwks_json, media_type="application/json")
