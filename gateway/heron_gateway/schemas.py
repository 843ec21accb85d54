"""Request and response bodies of the public API (the OpenAPI contract)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, Required, TypeAlias

from heron_common.limits import MAX_COLLECTION_NAME_LENGTH, MAX_SLUG_LENGTH, MAX_TITLE_LENGTH
from heron_common.security.permissions import BUILTIN_ROLE_NAMES, PUBLIC_ROLE, VALID_PERMISSIONS
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError
from typing_extensions import TypeAliasType, TypedDict

# -- what the services enforce, stated for the OpenAPI document ---------------------------------
# Integer bounds stay within 2**53: FastAPI writes every `minimum`/`maximum` as a float, and a
# float beyond 2**53 is not the integer the server compares with.
MAX_SAFE_INTEGER = 2**53 - 1
NO_NUL = r"^[^\x00]*$"
# Python's `str.strip()` whitespace, spelled out: regex dialects disagree on what `\s` is.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"
"""No NUL character (PostgreSQL cannot store it), and something besides whitespace."""
EMAIL_PATTERN = r"^[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+$"
"""Printable ASCII `local@domain.tld`: the portable form of what the auth service accepts (which
also takes other printable characters, NFKC-normalized)."""
# At least three different characters (the auth service also refuses the most common passwords).
_THREE_DISTINCT = r"([\s\S])[\s\S]*?(?!\1)([\s\S])[\s\S]*?(?!\1|\2)[\s\S]"
PASSWORD_MIN_LENGTH = 10  # the auth service's default (`HERON_AUTH_PASSWORD_MIN_LENGTH`)
PASSWORD_MAX_LENGTH = 256
ASSIGNABLE_ROLES = tuple(sorted(BUILTIN_ROLE_NAMES - {PUBLIC_ROLE}))
PERMISSION_NAMES = tuple(sorted(VALID_PERMISSIONS))


def _integral(value: Any) -> Any:
    """JSON has one number type: `2.0` is the integer 2. Strings and booleans stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Integral = BeforeValidator(_integral)
"""For `Annotated[int, Field(bounds...), Integral]`: an integer as JSON Schema means it (`2.0`
included), never a string or a boolean. (Bounds before it, or they are lost from the schema.)"""

Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=PASSWORD_MAX_LENGTH,
        json_schema_extra={"minLength": PASSWORD_MIN_LENGTH, "pattern": _THREE_DISTINCT},
        description=(
            f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, at least three of them "
            "different, and not one of the most common passwords."
        ),
    ),
]
Email = Annotated[
    str,
    Field(min_length=1, max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN}),
]
Permission = Annotated[str, Field(json_schema_extra={"enum": list(PERMISSION_NAMES)})]
Role = Annotated[str, Field(json_schema_extra={"enum": list(ASSIGNABLE_ROLES)})]
Username = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{3,32}$",
        description="3 to 32 of a-z, 0-9, `_`, `.` and `-`; case-insensitive (stored in lower "
        "case), unique.",
    ),
]
PersonName = Annotated[str, Field(max_length=100, pattern=NO_NUL)]


class _DocumentedAs:
    """Validate as the annotated type, document as `documented` (whose definitions, recursive
    ones included, land in the document's components)."""

    def __init__(self, documented: Any) -> None:
        self.core_schema = TypeAdapter(documented).core_schema

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.core_schema)


class _SchemaOf:
    """A keyword value for `_Also`: the JSON Schema of `type_` (a `$ref` if it has a name)."""

    def __init__(self, type_: Any) -> None:
        self.core_schema = TypeAdapter(type_).core_schema


class _Also:
    """Add JSON Schema keywords to what pydantic generates (for a `$ref`d recursive type)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        extra = {
            key: handler(value.core_schema) if isinstance(value, _SchemaOf) else value
            for key, value in self.keywords.items()
        }
        return {**handler(core_schema), **extra}


_Text = Annotated[str, WithJsonSchema({"type": "string", "pattern": NO_NUL})]
_Int64 = Annotated[int, WithJsonSchema({"type": "integer", "format": "int64"})]
_Fraction = Annotated[float, WithJsonSchema({"type": "number", "not": {"type": "integer"}})]
if TYPE_CHECKING:  # mypy cannot follow this recursive alias; it only documents
    JsonValue: TypeAlias = Any
else:
    JsonValue = TypeAliasType(
        "JsonValue",
        _Text
        | _Int64
        | _Fraction
        | bool
        | list["JsonValue"]
        | Annotated[dict[str, "JsonValue"], _Also(propertyNames={"pattern": NO_NUL})]
        | None,
    )
JsonDocument = Annotated[
    dict[str, Any],
    _DocumentedAs(Annotated[dict[str, JsonValue], _Also(propertyNames={"pattern": NO_NUL})]),
]
"""A JSON object as every store holds it exactly: no NUL character in a key or a string, integers
within 64 bits, no NaN or Infinity, nested at most 32 levels. Checked by
`heron_common.jsondoc`; only documented here."""

ItemStatus = Literal["draft", "review", "published", "archived"]
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_OR_EMPTY = r"^(?:[a-z0-9]+(?:-[a-z0-9]+)*)?$"
SLUG_RULE = (
    "Lowercase letters and digits in runs joined by single hyphens, as the title's slug would "
    "be; letters of non-Latin scripts count too (`привет-мир`)."
)

# -- collection field schemas (checked by the content service, `heron_content.schema`) ----------
FieldType = Literal[
    "string", "text", "textarea", "richtext", "markdown", "email", "url", "slug", "color",
    "date", "datetime", "select", "radio", "media", "reference", "number", "integer",
    "boolean", "checkbox", "array", "multiselect", "object", "json",
]  # fmt: skip
_Bound = _Int64 | _Fraction | None


FieldFormat = Literal[
    "richtext", "markdown", "textarea", "media", "date", "date-time", "datetime", "email",
    "uri", "url", "color", "slug", "reference",
]  # fmt: skip
_Length = Annotated[int, Field(ge=0, le=2**31 - 1)] | None
_DateOrNumber = _Int64 | _Fraction | _Text | None


class FieldDefinition(TypedDict, total=False):
    """One field of a collection: its type and what its values must satisfy. Which keys fit
    which type is in the README ("Content model"); a key that does not fit the field's type is a
    400 naming it. `null` for a key means it is not set."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    type: Required[FieldType]
    format: FieldFormat | None
    title: _Text | None
    description: _Text | None
    placeholder: _Text | None
    helpText: _Text | None
    widget: _Text | None
    required: bool | list[_Text] | None
    readonly: bool | None
    unique: bool | None
    indexed: Literal[False] | None
    hidden: bool | None
    default: JsonValue | None
    enum: Annotated[list[JsonValue], Field(min_length=1, max_length=500)] | None
    options: Annotated[list[JsonValue], Field(min_length=1, max_length=500)] | None
    minLength: _Length | None
    maxLength: _Length | None
    minItems: _Length | None
    maxItems: _Length | None
    minimum: _DateOrNumber | None
    maximum: _DateOrNumber | None
    pattern: Annotated[str, Field(min_length=1, max_length=500)] | None
    items: FieldDefinition | None
    properties: dict[str, FieldDefinition] | None
    collection: Annotated[str, Field(min_length=1)] | None
    collections: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None
    multiple: bool | None
    accept: JsonValue | None


class FieldSchema(TypedDict, total=False):
    """A collection's fields, SonicJS's shape: `{"properties": {"body": {"type": "richtext",
    "required": true}}}`. Names listed in `required` must be declared in `properties`."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    type: Literal["object"]
    title: _Text | None
    description: _Text | None
    properties: Annotated[
        dict[str, FieldDefinition],
        _Also(
            propertyNames={"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 64},
            maxProperties=200,
        ),
    ]
    required: list[str]


FieldSchemaDocument = Annotated[dict[str, Any], _DocumentedAs(FieldSchema)]
"""A field schema, validated by the content service, which names every problem."""


class ErrorDetailOut(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `data.body`.")
    message: str


class ErrorBody(BaseModel):
    """Every error: SonicJS's `error` message string, with Heron's fields beside it."""

    error: str = Field(description="What went wrong, for a person (SonicJS's field).")
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    request_id: str = Field(description="The request's `X-Request-Id`, for support and logs.")
    details: list[ErrorDetailOut]


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
# A request the HTTP server cannot even parse (a request line or headers over its limits, about
# 80 KiB) is refused by it before Heron sees it: a 400 in plain text.
ERROR_RESPONSES[400]["content"] = {"text/plain": {"schema": {"type": "string"}}}
ERROR_RESPONSES[400]["description"] = (
    "Invalid input; a request the HTTP server cannot parse (over about 80 KiB of request line "
    "and headers) is refused in plain text"
)


# For a route that takes `If-Match`.
PRECONDITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {"model": ErrorBody, "description": "If-Match names a version the item is not at"}
}


# For a route whose success is not JSON (a page, metrics text): its errors still are (a `model`
# would be documented under the route's own media type).
JSON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": response["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, response in ERROR_RESPONSES.items()
}


# An answer's documented shape lists every field it has: `additionalProperties: false` in the
# OpenAPI document, so a field rendered but not documented fails the shape tests.
SHAPE = ConfigDict(extra="forbid")


class CollectionOut(BaseModel):
    model_config = SHAPE
    id: str
    name: str
    display_name: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="The field schema.")
    managed: bool
    is_active: int = Field(description="SonicJS's flag: `1` (active) or `0`.")
    active: bool = Field(description="`is_active` as a boolean.")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")
    version: int = Field(description="Bumped by every change of the collection.")
    source: str | None = Field(
        description="The file of `HERON_CONTENT_COLLECTIONS_DIR` that defines it (then it is "
        "read-only through the API); null when the API does."
    )


class ItemOut(BaseModel):
    model_config = SHAPE
    id: str
    title: str
    slug: str
    status: str = Field(description="draft | review | published | archived")
    collectionId: str
    collection: str = Field(description="The collection's name.")
    data: dict[str, Any]
    author_id: str
    version: int = Field(description="Increments on every change.")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")
    published_at: int | None = Field(description="Epoch milliseconds; null until published.")
    scheduled_publish_at: int | None = Field(
        description="When the scheduler publishes it (epoch ms); null: not scheduled. Shown to "
        "callers who may see its drafts."
    )
    scheduled_unpublish_at: int | None = Field(
        description="When the scheduler takes it back to draft (epoch ms); null: not scheduled."
    )
    schedule_error: str | None = Field(
        description="Why the last scheduled change did not happen; null when it did."
    )


class ItemPart(BaseModel):
    """An item as `fields=` projects it: its id and the fields asked for."""

    model_config = SHAPE
    id: str
    title: str | None = None
    slug: str | None = None
    status: str | None = None
    data: dict[str, Any] | None = Field(default=None, description="The `data.` fields asked for.")
    author_id: str | None = None
    version: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    published_at: int | None = None
    scheduled_publish_at: int | None = None
    scheduled_unpublish_at: int | None = None
    schedule_error: str | None = None


class ListMeta(BaseModel):
    count: int = Field(description="Entries in this page.")
    total: int = Field(description="Entries matching the query, ignoring limit and offset.")
    limit: int
    offset: int
    timestamp: str = Field(description="When the response was produced (ISO 8601).")


class ItemListMeta(BaseModel):
    count: int = Field(description="Items in this page.")
    total: int | None = Field(
        default=None,
        description="Items matching the query, ignoring the page: only with `meta=total`.",
    )
    limit: int
    offset: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last one."
    )
    timestamp: str = Field(description="When the response was produced (ISO 8601).")
    message: str | None = Field(
        default=None, description="Why the page is empty, e.g. an unknown collection."
    )


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
    data: list[ItemOut | ItemPart] = Field(description="Whole items, or as `fields=` asks.")
    meta: ItemListMeta


class RevisionOut(BaseModel):
    model_config = SHAPE
    version: int = Field(description="The item's version this revision recorded.")
    itemId: str
    action: Literal["created", "updated", "restored", "scheduled", "migrated"] = Field(
        description="`scheduled`: its schedule set or cancelled; `migrated`: fitted to a "
        "confirmed schema change."
    )
    status: str = Field(description="The item's status at this version.")
    title: str
    slug: str
    data: dict[str, Any]
    author_id: str = Field(description="Who made the change.")
    created_at: int = Field(description="Epoch milliseconds.")


class RevisionEnvelope(BaseModel):
    data: RevisionOut


class RevisionList(BaseModel):
    data: list[RevisionOut]
    meta: ListMeta


def _text_only(value: Any) -> Any:
    """A datetime given as text (ISO 8601), never a number (those are epoch milliseconds)."""
    if not isinstance(value, str | dt.datetime):
        raise ValueError("expected an ISO 8601 datetime or epoch milliseconds")
    return value


_MOMENT_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER},
        {"type": "string", "format": "date-time"},
    ],
    "description": "Epoch milliseconds, or an ISO 8601 datetime (UTC when it has no offset).",
}
# Never null: leaving the field out is how to say "not this one".
Moment = Annotated[
    Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER), Integral]
    | Annotated[dt.datetime, BeforeValidator(_text_only)],
    WithJsonSchema(_MOMENT_SCHEMA),
]


def _not_null(schema: dict[str, Any]) -> None:
    """An optional field documented as it is taken: absent or a value, never null."""
    schema.pop("default", None)
    choices = schema.pop("anyOf", [])
    schema.update(next(c for c in choices if c.get("type") != "null"))


_NOT_NULL = _not_null


def _one_of_set(*names: str) -> dict[str, Any]:
    """JSON Schema for "at least one of these"."""
    return {"anyOf": [{"required": [name]} for name in names]}


class ScheduleBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_of_set("publish_at", "unpublish_at")
    )
    publish_at: Moment | None = Field(
        default=None,
        description="When to publish; in the future.",
        json_schema_extra=_NOT_NULL,
    )
    unpublish_at: Moment | None = Field(
        json_schema_extra=_NOT_NULL,
        default=None,
        description="When to take it back to draft; in the future, after publish_at.",
    )
    version: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER), Integral] | None = Field(
        default=None, description="Only act if the item is still at this version (else 409)."
    )

    @field_validator("publish_at", "unpublish_at", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out rather than null")
        return value


class VersionGuard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER), Integral] | None = Field(
        default=None, description="Only act if the item is still at this version (else 409)."
    )


COMMENT_RULE = (
    "Why (e.g. a reviewer's note on a status change), for the plugins' hooks: the workflow "
    "plugin may require one."
)


class StatusChange(VersionGuard):
    comment: str | None = Field(default=None, max_length=1000, description=COMMENT_RULE)


class Deleted(BaseModel):
    success: bool


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(
        min_length=1,
        max_length=MAX_COLLECTION_NAME_LENGTH,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Machine name, e.g. `blog_posts`: a lowercase letter, then lowercase letters, "
        "digits and `_`. Permanent.",
    )
    display_name: str = Field(
        default="",
        max_length=200,
        alias="displayName",
        pattern=NO_NUL,
        description="Defaults to the name.",
    )
    description: str = Field(default="", max_length=2000, pattern=NO_NUL)
    schema_: FieldSchemaDocument | None = Field(default=None, alias="schema")


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    display_name: str | None = Field(
        default=None, max_length=200, alias="displayName", pattern=NOT_BLANK
    )
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    schema_: FieldSchemaDocument | None = Field(default=None, alias="schema")
    confirm: StrictBool = Field(
        default=False,
        description="Apply a schema change that removes or converts data items hold (without "
        "it such a change is a 409 saying how many items and which fields). Items are fitted "
        "to the new schema, each as a new version; their revisions keep the old values.",
    )


def _one_of_required(*names: str) -> dict[str, Any]:
    """JSON Schema for "at least one of these, non-empty" (pydantic cannot say it)."""
    return {
        "anyOf": [
            {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
            for name in names
        ]
    }


class ItemCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra=_one_of_required("collectionId", "collection"),
    )

    collectionId: str | None = Field(default=None, description="The collection's id or name.")
    collection: str | None = Field(default=None, description="Alias of `collectionId`.")
    title: str = Field(min_length=1, max_length=MAX_TITLE_LENGTH, pattern=NOT_BLANK)
    slug: str = Field(
        default="",
        max_length=MAX_SLUG_LENGTH,
        json_schema_extra={"pattern": SLUG_OR_EMPTY},
        description="Derived from the title if empty. " + SLUG_RULE,
    )
    status: ItemStatus = "draft"
    data: JsonDocument = Field(
        default_factory=dict,
        description="Checked against the collection's field schema: required fields, field "
        "types, `enum`, `minLength`/`maxLength`, `minimum`/`maximum`.",
    )


class ItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        default=None, min_length=1, max_length=MAX_TITLE_LENGTH, pattern=NOT_BLANK
    )
    slug: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SLUG_LENGTH,
        json_schema_extra={"pattern": SLUG},
        description=SLUG_RULE,
    )
    status: ItemStatus | None = None
    data: JsonDocument | None = Field(
        default=None, description="Checked against the collection's field schema."
    )
    version: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER), Integral] | None = Field(
        default=None, description="Only apply if the item is still at this version (else 409)."
    )
    comment: str | None = Field(default=None, max_length=1000, description=COMMENT_RULE)


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

    email: Email
    password: Password
    username: Username | None = Field(
        default=None,
        description="Default: from the email's local part (`jane.doe@…` → `jane.doe`).",
    )
    firstName: PersonName = ""
    lastName: PersonName = ""
    display_name: str = Field(default="", max_length=200, pattern=NO_NUL)


class PasswordlessRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)


class OtpVerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    code: str = Field(min_length=1, max_length=20, description="The 4 to 8 digits mailed.")


class PasswordlessSent(BaseModel):
    message: str
    expiresIn: int


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, max_length=200)


class LogoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, max_length=200)


class MeUpdate(BaseModel):
    """Names and username only: role, status and email are changed by administrators."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    username: Username | None = None
    firstName: PersonName | None = None
    lastName: PersonName | None = None


# Profile fields as the REST API names them → as the auth service's messages do.
_PROFILE_FIELDS = {
    "display_name": "display_name",
    "username": "username",
    "firstName": "first_name",
    "lastName": "last_name",
}


def new_account(body: RegisterBody | UserCreate) -> dict[str, str]:
    """A new account's fields, under the auth service's names (an empty username is derived)."""
    return {
        "email": body.email,
        "password": body.password,
        **{field: getattr(body, name) or "" for name, field in _PROFILE_FIELDS.items()},
    }


def profile_changes(body: BaseModel) -> dict[str, str]:
    """The profile fields an update body sets, under the auth service's names."""
    return {
        field: value
        for name, field in _PROFILE_FIELDS.items()
        if (value := getattr(body, name, None)) is not None
    }


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class UserOut(BaseModel):
    model_config = SHAPE
    id: str
    email: str = Field(description="In lower case.")
    username: str
    firstName: str
    lastName: str
    display_name: str
    role: str
    status: str = Field(description="active | disabled")
    created_at: int = Field(description="Epoch milliseconds.")
    updated_at: int = Field(description="Epoch milliseconds.")
    last_login_at: int | None = Field(description="Epoch milliseconds; null if never.")


class MeOut(UserOut):
    first_name: str = Field(description="`firstName` again, as SonicJS's /auth/me names it.")
    last_name: str = Field(description="`lastName` again, as SonicJS's /auth/me names it.")
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


class LoggedOut(BaseModel):
    message: str = Field(description="`Logged out successfully`")
    success: bool


class UserEnvelope(BaseModel):
    data: UserOut


class UserList(BaseModel):
    data: list[UserOut]
    meta: ListMeta


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    username: Username | None = Field(default=None, description="Default: from the email.")
    firstName: PersonName = ""
    lastName: PersonName = ""
    display_name: str = Field(default="", max_length=200, pattern=NO_NUL)
    role: Role = "viewer"


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    username: Username | None = None
    firstName: PersonName | None = None
    lastName: PersonName | None = None
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    password: Password | None = None


class RoleOut(BaseModel):
    model_config = SHAPE
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

    permissions: list[Permission] = Field(
        max_length=100, description="The `public` role (anonymous callers) may only read."
    )
    description: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class ApiTokenOut(BaseModel):
    model_config = SHAPE
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

    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    permissions: list[Permission] = Field(
        default_factory=list,
        max_length=100,
        description="At most the creator's own; empty means all of the creator's.",
    )
    expires_at: Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER), Integral] | None = Field(
        default=None, description="Epoch milliseconds, in the future; 0 or null never expires."
    )


# -- SonicJS's admin API (routes/admin.py) ------------------------------------------------------
class AdminCollectionCreate(CollectionCreate):
    """SonicJS's body: the display name as `displayName` or `display_name` (one is required)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_of_required("displayName", "display_name")
    )

    displayName: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    display_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)  # type: ignore[assignment]


class AdminCollectionUpdate(BaseModel):
    """SonicJS's body, and Heron's `displayName` and `schema`; at least one field. A null is the
    same as leaving the field out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    display_name: str | None = Field(default=None, max_length=200, pattern=NOT_BLANK)
    displayName: str | None = Field(default=None, max_length=200, pattern=NOT_BLANK)
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    is_active: Annotated[
        bool | None,
        WithJsonSchema(
            {
                "enum": [True, None],
                "description": "Heron collections are always active: `false` is refused (400).",
            }
        ),
    ] = None
    schema_: FieldSchemaDocument | None = Field(default=None, alias="schema")
    confirm: StrictBool = Field(
        default=False, description="Apply a schema change that removes or converts item data."
    )


class AdminCacheInvalidate(BaseModel):
    """SonicJS's body: a glob over the keys of one namespace, or of both without `namespace`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["pattern"]})

    pattern: Annotated[
        str | None,
        Field(max_length=200),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "A glob over keys (`*`, `?`, `[...]`), e.g. `anon:*`.",
            }
        ),
    ] = None
    namespace: Annotated[
        str | None,
        Field(max_length=64),
        WithJsonSchema(
            {"enum": ["gateway", "content", None], "description": "Both when left out."}
        ),
    ] = None


class AdminCacheWarm(BaseModel):
    """SonicJS's `{"entries": [{"key", "value"}]}` is refused: Heron caches only what its
    services loaded, never values written from outside."""

    model_config = ConfigDict(extra="forbid")

    entries: Annotated[
        list[Any] | None,
        WithJsonSchema({"not": {}, "description": "Not supported (400)."}),
    ] = None
