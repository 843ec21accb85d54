"""gRPC servicer: protobuf messages ⇄ auth use cases, nothing else."""

from __future__ import annotations

from typing import Any, Literal

import grpc
import orjson
from cms.auth.v1 import auth_pb2 as pb
from cms.auth.v1 import auth_pb2_grpc
from cms.common.v1 import common_pb2
from heron_common.limits import DEFAULT_USERS_PAGE_SIZE, MAX_USERS_PAGE_SIZE
from heron_common.rpc.paging import page_bounds
from heron_common.rpc.peers import client_address
from heron_common.security.authz import AUTHENTICATED, INTERNAL, PUBLIC, current_principal

from heron_auth.profile import Profile
from heron_auth.repository import ApiToken, Role, User
from heron_auth.service import AuthService, Issued

Context = grpc.aio.ServicerContext[Any, Any]

# What each method needs. Methods missing here are refused (see heron_common.security.authz).
POLICY: dict[str, str] = {
    "Login": PUBLIC,
    "SignInVerified": INTERNAL,
    "CheckAccount": INTERNAL,
    "Register": PUBLIC,
    "Refresh": PUBLIC,
    "Logout": PUBLIC,
    "ExchangeApiToken": PUBLIC,
    "GetJwks": PUBLIC,
    "GetAuthState": PUBLIC,
    "GetMe": AUTHENTICATED,
    "UpdateMe": AUTHENTICATED,
    "ChangePassword": AUTHENTICATED,
    "CreateApiToken": AUTHENTICATED,
    "ListApiTokens": AUTHENTICATED,
    "RevokeApiToken": AUTHENTICATED,
    "ListUsers": "users.read",
    "GetUser": "users.read",
    "CreateUser": "users.create",
    "UpdateUser": "users.update",
    "DeleteUser": "users.delete",
    "ListRoles": "users.read",
    "UpdateRole": "users.update",
    "RotateSigningKey": "settings.update",
}


def user_message(row: User) -> pb.User:
    return pb.User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        username=row.username,
        first_name=row.first_name,
        last_name=row.last_name,
        status=row.status,
        role=row.role,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_login_at=row.last_login_at,
    )


def session_message(issued: Issued) -> pb.Session:
    return pb.Session(
        user=user_message(issued.user),
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        session_id=issued.session_id,
        csrf_token=issued.csrf_token,
    )


def role_message(row: Role) -> pb.Role:
    return pb.Role(
        name=row.name,
        description=row.description,
        permissions=sorted(row.permissions),
        builtin=row.builtin,
    )


def api_token_message(row: ApiToken) -> pb.ApiToken:
    return pb.ApiToken(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        permissions=row.permissions or [],
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        user_id=row.user_id,
    )


def _new_profile(request: pb.RegisterRequest | pb.CreateUserRequest) -> Profile:
    """A new account's profile; empty display name and username are derived."""
    return Profile(
        display_name=request.display_name or None,
        username=request.username or None,
        first_name=request.first_name,
        last_name=request.last_name,
    )


def _changes(request: pb.UpdateMeRequest | pb.UpdateUserRequest) -> Profile:
    """The profile fields an update sets (absent ones stay as they are)."""

    def given(field: Literal["display_name", "username", "first_name", "last_name"]) -> str | None:
        return str(getattr(request, field)) if request.HasField(field) else None

    return Profile(
        display_name=given("display_name"),
        username=given("username"),
        first_name=given("first_name"),
        last_name=given("last_name"),
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: AuthService) -> None:
        self.service = service

    def _client(self, context: Context) -> str:
        """The address this call's attempts count under (see heron_common.rpc.peers)."""
        return client_address(
            context.invocation_metadata() or (),
            context.peer(),
            self.service.settings.internal_secret,
        )

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.Session:
        issued = await self.service.sessions.login(
            request.email, request.password, self._client(context)
        )
        return session_message(issued)

    async def SignInVerified(
        self, request: pb.SignInVerifiedRequest, context: Context
    ) -> pb.Session:
        issued = await self.service.sessions.sign_in_verified(
            request.email, request.method or "passwordless", self._client(context)
        )
        return session_message(issued)

    async def CheckAccount(
        self, request: pb.CheckAccountRequest, context: Context
    ) -> pb.CheckAccountResponse:
        active = await self.service.sessions.account_active(request.email)
        return pb.CheckAccountResponse(active=active)

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.Session:
        issued = await self.service.sessions.register(
            request.email, request.password, _new_profile(request)
        )
        return session_message(issued)

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.Session:
        issued = await self.service.sessions.refresh(
            request.refresh_token, from_cookie=request.from_cookie, csrf_token=request.csrf_token
        )
        return session_message(issued)

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        await self.service.sessions.logout(current_principal(), request.refresh_token)
        return pb.LogoutResponse()

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.User:
        return user_message(await self.service.users.me(current_principal()))

    async def UpdateMe(self, request: pb.UpdateMeRequest, context: Context) -> pb.User:
        return user_message(
            await self.service.users.update_me(current_principal(), _changes(request))
        )

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Context
    ) -> pb.ChangePasswordResponse:
        await self.service.users.change_password(
            current_principal(),
            request.current_password,
            request.new_password,
            self._client(context),
        )
        return pb.ChangePasswordResponse()

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        page = page_bounds(
            request.page, maximum=MAX_USERS_PAGE_SIZE, default=DEFAULT_USERS_PAGE_SIZE
        )
        rows, total = await self.service.users.list(page)
        return pb.ListUsersResponse(
            users=[user_message(r) for r in rows], page=common_pb2.PageInfo(total=total)
        )

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        return user_message(await self.service.users.get(request.id))

    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        row = await self.service.users.create(
            current_principal(),
            email=request.email,
            password=request.password,
            role=request.role,
            profile=_new_profile(request),
        )
        return user_message(row)

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        row = await self.service.users.update(
            current_principal(),
            request.id,
            profile=_changes(request),
            role=request.role if request.HasField("role") else None,
            status=request.status if request.HasField("status") else None,
            password=request.password if request.HasField("password") else None,
        )
        return user_message(row)

    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Context
    ) -> pb.DeleteUserResponse:
        await self.service.users.delete(current_principal(), request.id)
        return pb.DeleteUserResponse()

    async def ListRoles(
        self, request: pb.ListRolesRequest, context: Context
    ) -> pb.ListRolesResponse:
        return pb.ListRolesResponse(
            roles=[role_message(r) for r in await self.service.roles.list()]
        )

    async def UpdateRole(self, request: pb.UpdateRoleRequest, context: Context) -> pb.Role:
        row = await self.service.roles.update(
            current_principal(),
            request.name,
            list(request.permissions),
            request.description if request.HasField("description") else None,
        )
        return role_message(row)

    async def CreateApiToken(
        self, request: pb.CreateApiTokenRequest, context: Context
    ) -> pb.CreatedApiToken:
        row, token = await self.service.api_tokens.create(
            current_principal(),
            request.name,
            list(request.permissions),
            request.expires_at if request.HasField("expires_at") else None,
        )
        return pb.CreatedApiToken(api_token=api_token_message(row), token=token)

    async def ListApiTokens(
        self, request: pb.ListApiTokensRequest, context: Context
    ) -> pb.ListApiTokensResponse:
        rows = await self.service.api_tokens.list(current_principal())
        return pb.ListApiTokensResponse(api_tokens=[api_token_message(r) for r in rows])

    async def RevokeApiToken(
        self, request: pb.RevokeApiTokenRequest, context: Context
    ) -> pb.RevokeApiTokenResponse:
        await self.service.api_tokens.revoke(current_principal(), request.id)
        return pb.RevokeApiTokenResponse()

    async def ExchangeApiToken(
        self, request: pb.ExchangeApiTokenRequest, context: Context
    ) -> pb.AccessToken:
        access, expires_in = await self.service.api_tokens.exchange(request.token)
        return pb.AccessToken(access_token=access, expires_in=expires_in)

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.Jwks:
        jwks, version = await self.service.issuer.jwks()
        return pb.Jwks(jwks_json=orjson.dumps(jwks), keys_version=version)

    async def RotateSigningKey(
        self, request: pb.RotateSigningKeyRequest, context: Context
    ) -> pb.Jwks:
        await self.service.issuer.rotate()
        jwks, version = await self.service.issuer.jwks()
        return pb.Jwks(jwks_json=orjson.dumps(jwks), keys_version=version)

    async def GetAuthState(self, request: pb.GetAuthStateRequest, context: Context) -> pb.AuthState:
        update, roles = await self.service.sessions.auth_state(
            request.cursor, request.roles_version
        )
        return pb.AuthState(
            cursor=update.cursor,
            revocations=[pb.Revocation(session_id=s, expires_at=e) for s, e in update.revocations],
            roles_version=update.roles_version,
            roles=[role_message(r) for r in roles] if update.roles is not None else [],
            keys_version=update.keys_version,
            access_token_ttl=self.service.settings.access_token_ttl_seconds,
        )
