"""The domain error taxonomy, shared by services (raise) and the gateway (render).

A service raises a `DomainError`; the gRPC error interceptor turns it into a status code plus
a JSON trailer (`heron-error-bin`) carrying the code, message and field details; the gateway
reads that trailer back into the same error and renders the one public error body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import grpc
import orjson

ERROR_TRAILER_KEY = "heron-error-bin"
MAX_TRAILER_DETAILS = 20
# Response headers a service may ask the gateway to send with its error (rate limits).
RELAYED_HEADERS = frozenset(
    {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy"}
)


@dataclass(frozen=True)
class ErrorDetail:
    """One problem with the input: which field (dotted path) and what is wrong with it."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class DomainError(Exception):
    """Base of every error a caller is meant to see. `message` must be safe to show."""

    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    # HTTP headers the gateway adds to the error response (e.g. `Retry-After`); only those
    # named in RELAYED_HEADERS cross gRPC (in the trailer).
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    # The cache tags of what this answer depends on, for an answer worth caching (a "not
    # found" that a write can end, such as an unknown collection's): they cross in the trailer.
    cache_tags: tuple[str, ...] = field(default=(), compare=False)

    code: ClassVar[str] = "internal"
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    http_status: ClassVar[int] = 500

    def __str__(self) -> str:
        return self.message

    def to_trailer(self) -> bytes:
        """The JSON trailer; bounded so it always fits gRPC's metadata size limit."""
        details = [
            {"field": d.field[:200], "message": d.message[:300]}
            for d in self.details[:MAX_TRAILER_DETAILS]
        ]
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message[:500],
            "details": details,
        }
        relayed = {k: v[:100] for k, v in self.headers.items() if k.lower() in RELAYED_HEADERS}
        if relayed:
            body["headers"] = relayed
        if self.cache_tags:
            body["tags"] = [t[:200] for t in self.cache_tags[:MAX_TRAILER_DETAILS]]
        return orjson.dumps(body)


class InvalidArgument(DomainError):
    code = "invalid_argument"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class Unauthenticated(DomainError):
    code = "unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


def validation_failed(problem: str, details: list[ErrorDetail]) -> InvalidArgument:
    """400 for a field that breaks its rules, worded as SonicJS's (`Validation failed: …`)."""
    return InvalidArgument(f"Validation failed: {problem}", details)


# SonicJS's message for a request without credentials, which its clients compare against.
AUTHENTICATION_REQUIRED = "Authentication required"


def authentication_required(reason: str = "") -> Unauthenticated:
    """401 for a caller who sent no credentials; `reason` says what signing in would unlock."""
    hint = reason or "send `Authorization: Bearer <token>` or sign in"
    return Unauthenticated(AUTHENTICATION_REQUIRED, [ErrorDetail("Authorization", hint)])


class PermissionDenied(DomainError):
    code = "permission_denied"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class NotFound(DomainError):
    code = "not_found"
    grpc_status = grpc.StatusCode.NOT_FOUND
    http_status = 404


class AlreadyExists(DomainError):
    code = "already_exists"
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409


class Conflict(DomainError):
    """The resource changed or is in a state that forbids the operation (e.g. version mismatch)."""

    code = "conflict"
    grpc_status = grpc.StatusCode.ABORTED
    http_status = 409


class PreconditionFailed(DomainError):
    code = "precondition_failed"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 412


class PayloadTooLarge(DomainError):
    """A body (an upload) past a size limit: refused the moment the limit is passed."""

    code = "payload_too_large"
    grpc_status = grpc.StatusCode.OUT_OF_RANGE
    http_status = 413


class UnsupportedMediaType(DomainError):
    """A file whose bytes are of a type that is not allowed (or not what it claimed to be)."""

    code = "unsupported_media_type"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 415


class ResourceExhausted(DomainError):
    code = "rate_limited"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429


class Unavailable(DomainError):
    code = "unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class DeadlineExceeded(DomainError):
    code = "deadline_exceeded"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 504


class Internal(DomainError):
    code = "internal"
    grpc_status = grpc.StatusCode.INTERNAL
    http_status = 500


_BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}

_BY_GRPC_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailed,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

_GENERIC_MESSAGES: dict[type[DomainError], str] = {
    Unavailable: "The service is temporarily unavailable; retry shortly.",
    DeadlineExceeded: "The service did not answer in time; retry shortly.",
    Internal: "Internal error.",
}
_TRANSPORT_LIMIT = "The answer is too large to relay; ask for fewer items (a lower `limit`)."


def from_trailer(value: bytes, default: type[DomainError] = Internal) -> DomainError | None:
    """The domain error a service's `heron-error-bin` trailer (`to_trailer`) describes; None
    when it is not one."""
    try:
        body: dict[str, Any] = orjson.loads(value)
        cls = _BY_CODE.get(str(body.get("code")), default)
        details = [
            ErrorDetail(str(d.get("field", "")), str(d.get("message", "")))
            for d in body.get("details") or []
            if isinstance(d, dict)
        ]
        headers = body.get("headers") or {}
        relayed = {
            str(k): str(v)
            for k, v in (headers.items() if isinstance(headers, dict) else ())
            if str(k).lower() in RELAYED_HEADERS
        }
        tags = body.get("tags") or []
        cache_tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
        return cls(str(body.get("message", "")), details, relayed, cache_tags)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None


def from_rpc_error(error: grpc.aio.AioRpcError) -> DomainError:
    """Rebuild the domain error a service raised; anything unexpected becomes `Internal`.

    Only a service's own trailer is trusted for the message: a status without one (raised by
    the gRPC library itself, e.g. connection refused) gets a generic message, so transport
    internals never reach a client.
    """
    cls = _BY_GRPC_STATUS.get(error.code(), Internal)
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_TRAILER_KEY and isinstance(value, bytes):
            found = from_trailer(value, cls)
            if found is not None:
                return found
            break
    if cls is ResourceExhausted:
        # Only a service's own trailer means "rate limited"; from the library itself it means a
        # message or metadata size limit, which retrying will never get past.
        return Internal(_TRANSPORT_LIMIT)
    return cls(_GENERIC_MESSAGES.get(cls, "The request could not be completed."))
