"""Conditional writes on items: every item answer carries an `ETag` naming the item and its
version (`"<id>.<version>"`), and a write with `If-Match` goes through only while the item is at
the version that tag names (else 412); `"version": N` in the body asks the same, answered 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Header
from heron_common.errors import Conflict, ErrorDetail, InvalidArgument, PreconditionFailed
from heron_common.rpc.client import call

T = TypeVar("T")

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1000,
        description="The item's `ETag` as last read: the write is refused (412) if the item "
        "changed since. `*` only requires that the item exists.",
    ),
]


def item_etag(item_id: str, version: int) -> str:
    return f'"{item_id}.{version}"'


def expected_version(
    item_id: str, if_match: str | None, body_version: int | None
) -> tuple[int | None, bool]:
    """The version the write requires (None: any), and whether `If-Match` asked for it."""
    if if_match is None:
        return body_version, False
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if tags == ["*"]:
        return body_version, False
    # Strong comparison (RFC 9110): a weak tag never matches, nor does another item's.
    prefix = f'"{item_id}.'
    versions = {
        tag[len(prefix) : -1] for tag in tags if tag.startswith(prefix) and tag.endswith('"')
    }
    numbers = {int(v) for v in versions if v.isascii() and v.isdigit() and len(v) <= 15}
    if not numbers:
        raise PreconditionFailed(
            "If-Match names no version of this item; read it again for its current ETag",
            [ErrorDetail("If-Match", "does not match the item's ETag")],
        )
    if len(numbers) > 1:
        raise InvalidArgument(
            "If-Match names several versions of this item; send the one you last read",
            [ErrorDetail("If-Match", "one ETag of this item")],
        )
    (version,) = numbers
    if body_version is not None and body_version != version:
        raise InvalidArgument(
            "If-Match and version name different versions; send one of them",
            [ErrorDetail("version", f"If-Match names version {version}")],
        )
    return version, True


async def conditional_call(
    method: Callable[..., Awaitable[T]],
    request: Any,
    item_id: str,
    *,
    if_match: str | None,
    version: int | None,
    timeout: float,  # noqa: ASYNC109 - becomes the gRPC deadline
    metadata: Iterable[tuple[str, str]],
) -> T:
    """A write of one item, made only at the version `If-Match` or `version` names (set as the
    request's `expected_version`); a mismatch is 412 when `If-Match` named it, else 409."""
    expected, by_if_match = expected_version(item_id, if_match, version)
    if expected is not None:
        request.expected_version = expected
    try:
        return await call(method, request, timeout=timeout, metadata=metadata)
    except Conflict as exc:
        if not by_if_match:
            raise
        raise PreconditionFailed(exc.message, exc.details) from None
