"""The admin's users, roles and API tokens.

Users: the list, a new account with its role, a role change, disabling and enabling. Roles:
the permission matrix (every role against every permission), editable for the roles that may
change (`admin` holds everything and cannot). API tokens: your own, created (the token is
shown once, never again), listed and revoked. All of it through the auth service as the
signed-in user, who needs `users.read`, `users.create` or `users.update` as the REST routes do.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from cms.auth.v1 import auth_pb2 as pb
from cms.common.v1.common_pb2 import PageRequest
from fastapi import APIRouter, Depends, Request
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from heron_common.security.authz import AUTHENTICATED
from heron_common.security.permissions import PERMISSIONS, Principal
from starlette.responses import RedirectResponse, Response

from heron_gateway.admin_ui.pages import PageAccess, PageError, as_user, form, render
from heron_gateway.render import user_json
from heron_gateway.routes.auth import clear_session_cookies
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(include_in_schema=False)
ReadsUsers = Annotated[Principal, Depends(PageAccess("users.read"))]
CreatesUsers = Annotated[Principal, Depends(PageAccess("users.create"))]
UpdatesUsers = Annotated[Principal, Depends(PageAccess("users.update"))]
SignedIn = Annotated[Principal, Depends(PageAccess(AUTHENTICATED))]
_REFUSALS = (InvalidArgument, AlreadyExists, Conflict, NotFound, PermissionDenied)


async def _roles(upstreams: Upstreams, principal: Principal) -> list[Any]:
    listed = await as_user(upstreams, principal, upstreams.auth.ListRoles, pb.ListRolesRequest())
    return list(listed.roles)


async def _users_page(
    request: Request,
    upstreams: Upstreams,
    principal: Principal,
    *,
    status: int = 200,
    error: str = "",
    problems: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    listed = await as_user(
        upstreams,
        principal,
        upstreams.auth.ListUsers,
        pb.ListUsersRequest(page=PageRequest(limit=200)),
    )
    return render(
        request,
        "users.html",
        principal,
        status=status,
        users=[user_json(u) for u in listed.users],
        roles=[r.name for r in await _roles(upstreams, principal)],
        error=error,
        problems=problems or {},
        typed=typed or {"email": "", "role": "viewer"},
        notice=notice,
    )


@router.get("/admin/users")
async def users_page(
    request: Request, upstreams: UpstreamsDep, principal: ReadsUsers, saved: str | None = None
) -> Response:
    return await _users_page(request, upstreams, principal, notice="Saved." if saved else "")


@router.post("/admin/users")
async def create_user(
    request: Request, upstreams: UpstreamsDep, principal: CreatesUsers
) -> Response:
    data = await form(request, principal)
    email = str(data.get("email") or "").strip()
    role = str(data.get("role") or "")
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.auth.CreateUser,
            pb.CreateUserRequest(email=email, password=str(data.get("password") or ""), role=role),
        )
    except _REFUSALS as exc:
        return await _users_page(
            request,
            upstreams,
            principal,
            status=exc.http_status,
            error=exc.message,
            problems={d.field: d.message for d in exc.details if d.field},
            typed={"email": email, "role": role},
        )
    return RedirectResponse("/admin/users?saved=1", 303)


@router.post("/admin/users/{user_id}")
async def update_user(
    request: Request, user_id: str, upstreams: UpstreamsDep, principal: UpdatesUsers
) -> Response:
    data = await form(request, principal)
    change = pb.UpdateUserRequest(id=user_id)
    action = str(data.get("action") or "")
    if action == "role":
        change.role = str(data.get("role") or "")
    elif action in ("disable", "enable"):
        change.status = "disabled" if action == "disable" else "active"
    else:
        raise PageError(400, "Unknown action", "Change the role, or disable or enable the account.")
    try:
        await as_user(upstreams, principal, upstreams.auth.UpdateUser, change)
    except _REFUSALS as exc:
        return await _users_page(
            request, upstreams, principal, status=exc.http_status, error=exc.message
        )
    return RedirectResponse("/admin/users?saved=1", 303)


# -- roles ----------------------------------------------------------------------------------------
@router.get("/admin/roles")
async def roles_page(
    request: Request, upstreams: UpstreamsDep, principal: ReadsUsers, saved: str | None = None
) -> Response:
    roles = await _roles(upstreams, principal)
    held = {r.name: set(r.permissions) for r in roles}
    extra = sorted({p for r in roles for p in r.permissions} - set(PERMISSIONS))
    return render(
        request,
        "roles.html",
        principal,
        roles=[
            {"name": r.name, "description": r.description, "fixed": r.name == "admin"}
            for r in roles
        ],
        permissions=[*PERMISSIONS, *extra],
        held=held,
        notice="Saved." if saved else "",
    )


@router.post("/admin/roles/{role}")
async def update_role(
    request: Request, role: str, upstreams: UpstreamsDep, principal: UpdatesUsers
) -> Response:
    data = await form(request, principal)
    chosen = [str(p) for p in data.getlist("permission")]
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.auth.UpdateRole,
            pb.UpdateRoleRequest(name=role, permissions=chosen),
        )
    except _REFUSALS as exc:
        raise PageError(exc.http_status, "Role not changed", exc.message) from None
    return RedirectResponse("/admin/roles?saved=1", 303)


# -- API tokens -----------------------------------------------------------------------------------
async def _tokens_page(
    request: Request,
    upstreams: Upstreams,
    principal: Principal,
    *,
    created: str = "",
    error: str = "",
    status: int = 200,
    notice: str = "",
) -> Response:
    listed = await as_user(
        upstreams, principal, upstreams.auth.ListApiTokens, pb.ListApiTokensRequest()
    )
    return render(
        request,
        "tokens.html",
        principal,
        status=status,
        tokens=[
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "created_at": t.created_at,
                "expires_at": t.expires_at if t.HasField("expires_at") else None,
                "last_used_at": t.last_used_at if t.HasField("last_used_at") else None,
                "revoked": t.HasField("revoked_at"),
            }
            for t in listed.api_tokens
        ],
        created=created,
        error=error,
        notice=notice,
    )


@router.get("/admin/tokens")
async def tokens_page(
    request: Request, upstreams: UpstreamsDep, principal: SignedIn, saved: str | None = None
) -> Response:
    return await _tokens_page(request, upstreams, principal, notice="Saved." if saved else "")


@router.post("/admin/tokens")
async def create_token(request: Request, upstreams: UpstreamsDep, principal: SignedIn) -> Response:
    data = await form(request, principal)
    days = str(data.get("days") or "").strip()
    change = pb.CreateApiTokenRequest(name=str(data.get("name") or "").strip())
    if days:
        if not days.isdigit() or not 1 <= int(days) <= 3650:
            return await _tokens_page(
                request,
                upstreams,
                principal,
                status=400,
                error="Expires in: a whole number of days, 1 to 3650 (or empty: never).",
            )
        change.expires_at = int((time.time() + int(days) * 86400) * 1000)
    try:
        made = await as_user(upstreams, principal, upstreams.auth.CreateApiToken, change)
    except _REFUSALS as exc:
        return await _tokens_page(
            request, upstreams, principal, status=exc.http_status, error=exc.message
        )
    # Shown in this answer only (never stored, never cached).
    return await _tokens_page(request, upstreams, principal, created=made.token, status=201)


@router.post("/admin/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: str, upstreams: UpstreamsDep, principal: SignedIn
) -> Response:
    await form(request, principal)
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.auth.RevokeApiToken,
            pb.RevokeApiTokenRequest(id=token_id),
        )
    except _REFUSALS as exc:
        raise PageError(exc.http_status, "Not revoked", exc.message) from None
    return RedirectResponse("/admin/tokens?saved=1", 303)


# -- your profile ---------------------------------------------------------------------------------
async def _profile_page(
    request: Request,
    upstreams: Upstreams,
    principal: Principal,
    *,
    status: int = 200,
    error: str = "",
    problems: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    me = await as_user(upstreams, principal, upstreams.auth.GetMe, pb.GetMeRequest())
    return render(
        request,
        "profile.html",
        principal,
        status=status,
        me=user_json(me),
        error=error,
        problems=problems or {},
        notice=notice,
    )


@router.get("/admin/profile")
async def profile_page(
    request: Request, upstreams: UpstreamsDep, principal: SignedIn, saved: str | None = None
) -> Response:
    return await _profile_page(request, upstreams, principal, notice="Saved." if saved else "")


@router.post("/admin/profile")
async def update_profile(
    request: Request, upstreams: UpstreamsDep, principal: SignedIn
) -> Response:
    data = await form(request, principal)
    change = pb.UpdateMeRequest(
        display_name=str(data.get("display_name") or "").strip(),
        first_name=str(data.get("first_name") or "").strip(),
        last_name=str(data.get("last_name") or "").strip(),
    )
    username = str(data.get("username") or "").strip()
    if username:
        change.username = username
    try:
        await as_user(upstreams, principal, upstreams.auth.UpdateMe, change)
    except _REFUSALS as exc:
        return await _profile_page(
            request,
            upstreams,
            principal,
            status=exc.http_status,
            error=exc.message,
            problems={d.field: d.message for d in exc.details if d.field},
        )
    return RedirectResponse("/admin/profile?saved=1", 303)


@router.post("/admin/profile/password")
async def change_password(
    request: Request, upstreams: UpstreamsDep, principal: SignedIn
) -> Response:
    data = await form(request, principal)
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.auth.ChangePassword,
            pb.ChangePasswordRequest(
                current_password=str(data.get("current_password") or ""),
                new_password=str(data.get("new_password") or ""),
            ),
        )
    except (*_REFUSALS, Unauthenticated, ResourceExhausted) as exc:
        response = await _profile_page(
            request,
            upstreams,
            principal,
            status=exc.http_status,
            error=exc.message,
            problems={d.field: d.message for d in exc.details if d.field},
        )
        for name, value in exc.headers.items():
            response.headers[name] = value
        return response
    # Changing the password ends every session (this browser's cookies go at once).
    response = RedirectResponse(
        "/admin/login?message=Your+password+has+changed%3A+sign+in+with+the+new+one.", 303
    )
    clear_session_cookies(response, upstreams.settings)
    return response
