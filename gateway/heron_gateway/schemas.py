"""Request and response bodies of the public API (the OpenAPI contract)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class ErrorDetailOut(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `data.body`.")
    message: str


class ErrorOut(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str = Field(description="The request's `X-Request-Id`, for support and logs.")
    details: list[ErrorDetailOut]


class ErrorBody(BaseModel):
    error: ErrorOut


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Invalid input",
        401: "No valid credentials",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        429: "Too many requests",
        503: "A backend service is unavailable",
        504: "A backend service did not answer in time",
    }.items()
}


class CollectionOut(BaseModel):
    id: str
    name: str
    display_name: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="The field schema.")
    managed: bool
    is_active: bool
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")


class ItemOut(BaseModel):
    id: str
    title: str
    slug: str
    status: str = Field(description="draft | published | archived")
    collectionId: str
    collection: str = Field(description="The collection's name.")
    data: dict[str, Any]
    author_id: str
    version: int = Field(description="Increments on every change.")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")
    published_at: int | None = Field(description="Epoch milliseconds; null until published.")


class ListMeta(BaseModel):
    count: int = Field(description="Items in this page.")
    total: int = Field(description="Items matching the query, ignoring limit and offset.")
    limit: int
    offset: int
    timestamp: str = Field(description="When the response was produced (ISO 8601).")


class CollectionMeta(BaseModel):
    count: int
    timestamp: str


class CollectionEnvelope(BaseModel):
    data: CollectionOut


class CollectionList(BaseModel):
    data: list[CollectionOut]
    meta: CollectionMeta


class ItemEnvelope(BaseModel):
    data: ItemOut


class ItemList(BaseModel):
    data: list[ItemOut]
    meta: ListMeta


class Deleted(BaseModel):
    success: bool


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64, description="Machine name, e.g. `blog_posts`.")
    display_name: str = Field(default="", max_length=200, alias="displayName")
    description: str = Field(default="", max_length=2000)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    display_name: str | None = Field(default=None, max_length=200, alias="displayName")
    description: str | None = Field(default=None, max_length=2000)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    collectionId: str | None = Field(default=None, description="The collection's id or name.")
    collection: str | None = Field(default=None, description="Alias of `collectionId`.")
    title: str = Field(min_length=1, max_length=500)
    slug: str = Field(default="", max_length=200, description="Derived from the title if empty.")
    status: str = Field(default="draft", description="draft | published | archived")
    data: dict[str, Any] = Field(default_factory=dict)


class ItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    slug: str | None = Field(default=None, min_length=1, max_length=200)
    status: str | None = None
    data: dict[str, Any] | None = None
    version: StrictInt | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Only apply if the item is still at this version (else 409).",
    )


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


# -- auth ---------------------------------------------------------------------------------------
class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RegisterBody(BaseModel):
    """Only these fields: anything else (a role, a status, an owner) is refused with 400."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(default="", max_length=200)


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, max_length=200)


class LogoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, max_length=200)


class MeUpdate(BaseModel):
    """Only the display name: role, status and email are changed by administrators."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    status: str = Field(description="active | disabled")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")
    last_login_at: int | None = Field(description="Epoch milliseconds; null if never.")


class MeOut(UserOut):
    permissions: list[str] = Field(default_factory=list)


class MeEnvelope(BaseModel):
    user: MeOut


class SessionOut(BaseModel):
    user: UserOut
    token: str = Field(description="The access token (a JWT) for `Authorization: Bearer`.")
    refresh_token: str = Field(description="Works once, for `POST /auth/refresh`.")
    expires_in: int = Field(description="Seconds until the access token expires.")


class TokensOut(BaseModel):
    token: str
    refresh_token: str
    expires_in: int


class Success(BaseModel):
    success: bool


class UserEnvelope(BaseModel):
    data: UserOut


class UserList(BaseModel):
    data: list[UserOut]
    meta: ListMeta


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(default="viewer", max_length=64)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, description="active | disabled")
    password: str | None = Field(default=None, max_length=1024)


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]
    builtin: bool


class RoleList(BaseModel):
    data: list[RoleOut]


class RoleEnvelope(BaseModel):
    data: RoleOut


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] = Field(max_length=100)
    description: str | None = Field(default=None, max_length=1000)


class ApiTokenOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    permissions: list[str] | None = Field(
        description="Its scope; null means the creator's permissions at each use."
    )
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="The token itself: shown this once, never again.")


class ApiTokenList(BaseModel):
    data: list[ApiTokenOut]


class ApiTokenEnvelope(BaseModel):
    data: ApiTokenCreated


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    permissions: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="At most the creator's own; empty means all of the creator's.",
    )
    expires_at: StrictInt | None = Field(
        default=None, ge=0, le=2**53, description="Epoch milliseconds; null never expires."
    )
