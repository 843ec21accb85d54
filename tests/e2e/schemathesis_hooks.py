"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through `SCHEMATHESIS_HOOKS`).

`positive_data_acceptance` fails any schema-valid request answered with 400. A few 400s depend on
what no static OpenAPI document can know: the stored state (a collection's own field schema, the
account's current password, the clock) or a relation between two parts of one body. This check is
that one with those 400s let through: only when every detail of the error names one of them, for
the operation where it can happen. Anything else that a schema-valid request gets a 400 for still
fails, exactly as the built-in check would.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

_CONTENT_WRITES = (
    "POST /api/content",
    "PUT /api/content/{item_id}",
    "PATCH /api/content/{item_id}",
)
_COLLECTION_WRITES = (
    "POST /api/collections",
    "PUT /api/collections/{name}",
    "PATCH /api/collections/{name}",
    "POST /admin/api/collections",
    "PATCH /admin/api/collections/{id}",
)
_PASSWORD_SETTERS = ("POST /auth/register", "POST /api/users", "PATCH /api/users/{user_id}")

# operation -> (field prefix, message fragment) of the details a 400 may carry for it
STATE_DEPENDENT: dict[str, list[tuple[str, str]]] = {}


def _allow(operations: tuple[str, ...], field: str, message: str) -> None:
    for operation in operations:
        STATE_DEPENDENT.setdefault(operation, []).append((field, message))


# Item data is checked against the field schema of its collection, which lives in the database.
_allow(_CONTENT_WRITES, "data.", "")
# `required` may only name fields declared in `properties` of the same body.
_allow(_COLLECTION_WRITES, "schema.required", "is not a declared field")
# (A name with a NUL byte could never be a declared field: that check answers first.)
_allow(_COLLECTION_WRITES, "schema.required", "contains \\u0000")
# Which keys fit which field type, and the relations between the keys of one field (a minimum
# above its maximum, a default outside its options, a pattern's syntax, the nesting depth):
# relations between parts of one body, listed in the README rather than in the document. A
# reference must name collections that exist: stored state.
for _fragment in (
    "not supported for",
    "is above",
    "is after",
    "the default",
    "must be a finite number",
    "must be an ISO 8601",
    "not a valid regular expression",
    "values must be distinct",
    "must list the same values as options",
    "expected",
    "lists its options",
    "names the collection it points to",
    "not both",
    "only a collection's own fields have this",
    "a format names a string field's type",
    "fields nest at most",
    "must be true or false",
    "field names are letters",
    "at most 200 fields",
    "no collection",
):
    _allow(_COLLECTION_WRITES, "schema", _fragment)
# The query language: a filter, sort or projection names the collection's fields (stored
# state), and the JSON inside `filter`/`where`/`sort` is a language no OpenAPI schema states; a
# cursor is valid only for the query that gave it. Every such 400 names the parameter first.
_LISTS = ("GET /api/content", "GET /api/collections/{name}/content")
for _parameter in ("filter", "where", "sort", "fields", "meta", "cursor", "include", "search"):
    _allow(_LISTS, _parameter, "")
# If-Match names a version of the item, which lives in the database: a 412 says it is not the
# item's (schema-valid tags of no item, or a stale one).
_IF_MATCH_WRITES = (
    "PUT /api/content/{item_id}",
    "PATCH /api/content/{item_id}",
    "DELETE /api/content/{item_id}",
    "POST /api/content/{item_id}/publish",
    "POST /api/content/{item_id}/unpublish",
    "POST /api/content/{item_id}/archive",
    "POST /api/content/{item_id}/revisions/{version}/restore",
    "POST /api/content/{item_id}/schedule",
    "DELETE /api/content/{item_id}/schedule",
)
_allow(_IF_MATCH_WRITES, "If-Match", "")
# "In the future" depends on the clock (and "after publish_at" relates two parts of the body).
_allow(("POST /api/content/{item_id}/schedule",), "publish_at", "must be in the future")
_allow(("POST /api/content/{item_id}/schedule",), "unpublish_at", "must be")
# The current password is the account's own.
_allow(("POST /auth/password",), "current_password", "not correct")
# A list of the most common passwords is policy, not a schema.
_allow((*_PASSWORD_SETTERS,), "password", "too common")
_allow(("POST /auth/password",), "new_password", "too common")
# "In the future" depends on the clock.
_allow(("POST /api/tokens",), "expires_at", "in the past")
# Which permissions a role may hold depends on the role in the path (`public` only reads).
_allow(("PUT /api/roles/{name}",), "permissions", "not for anonymous callers")
# What an uploaded file is depends on its bytes, which no schema describes: bytes of a type that
# is not allowed (415), an image with too many pixels (413) or an unreadable header (400).
_UPLOADS = (
    "POST /api/media/upload",
    "POST /api/media/upload-multiple",
    "PUT /api/media/upload/{filename}",
)
_allow(_UPLOADS, "file", "")
# A media cursor is valid only for the list and sort that gave it.
_allow(("GET /api/media",), "cursor", "")


def _details(response: Any) -> list[dict[str, str]]:
    try:
        body = response.json()
        details = body["details"]
    except (ValueError, KeyError, TypeError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def explained_by_state(operation: str, status: int, details: list[dict[str, str]]) -> bool:
    allowed = STATE_DEPENDENT.get(operation, [])
    return (
        status in (400, 412, 413, 415)
        and bool(details)
        and all(
            any(
                str(d.get("field", "")).startswith(field) and message in str(d.get("message", ""))
                for field, message in allowed
            )
            for d in details
        )
    )


@schemathesis.check
def positive_data_acceptance_beyond_state(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for the state-dependent 400s listed above."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        if explained_by_state(case.operation.label, response.status_code, _details(response)):
            return None
        raise
