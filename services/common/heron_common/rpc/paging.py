"""A list method's page, from the shared `cms.common.v1.PageRequest`: the same defaults, bounds
and messages for every service's lists."""

from __future__ import annotations

from dataclasses import dataclass

from cms.common.v1 import common_pb2

from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.limits import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int = 0


def page_bounds(
    request: common_pb2.PageRequest,
    maximum: int = MAX_PAGE_SIZE,
    default: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """The page `request` asks for; unset limit: `default`. Out of bounds is a 400."""
    limit = request.limit if request.HasField("limit") else default
    if not 1 <= limit <= maximum:
        raise InvalidArgument(
            f"limit: must be between 1 and {maximum}",
            [ErrorDetail("limit", f"must be between 1 and {maximum}")],
        )
    if not 0 <= request.offset <= MAX_OFFSET:
        problem = "must not be negative" if request.offset < 0 else f"at most {MAX_OFFSET}"
        raise InvalidArgument(f"offset: {problem}", [ErrorDetail("offset", problem)])
    return Page(limit, request.offset)
