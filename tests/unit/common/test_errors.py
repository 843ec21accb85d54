"""Domain errors survive the trip through gRPC status + trailer and map to HTTP statuses."""

from __future__ import annotations

import grpc
import pytest
from heron_common.errors import (
    ERROR_TRAILER_KEY,
    AlreadyExists,
    Conflict,
    DeadlineExceeded,
    DomainError,
    ErrorDetail,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)


def rpc_error(code: grpc.StatusCode, details: str, trailer: bytes | None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if trailer is not None:
        trailing.add(ERROR_TRAILER_KEY, trailer)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


@pytest.mark.parametrize(
    ("cls", "http"),
    [
        (InvalidArgument, 400),
        (Unauthenticated, 401),
        (PermissionDenied, 403),
        (NotFound, 404),
        (AlreadyExists, 409),
        (Conflict, 409),
        (PreconditionFailed, 412),
        (ResourceExhausted, 429),
        (Unavailable, 503),
        (DeadlineExceeded, 504),
        (Internal, 500),
    ],
)
def test_round_trip(cls: type[DomainError], http: int) -> None:
    original = cls("something is off", [ErrorDetail("data.title", "is required")])
    rebuilt = from_rpc_error(rpc_error(original.grpc_status, "x", original.to_trailer()))
    assert type(rebuilt) is cls
    assert rebuilt.http_status == http
    assert rebuilt.message == "something is off"
    assert rebuilt.details == [ErrorDetail("data.title", "is required")]


def test_library_errors_get_generic_messages() -> None:
    err = from_rpc_error(
        rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; 10.0.0.1", None)
    )
    assert isinstance(err, Unavailable)
    assert "10.0.0.1" not in err.message
    unknown = from_rpc_error(rpc_error(grpc.StatusCode.UNKNOWN, "Traceback ...", None))
    assert isinstance(unknown, Internal)
    assert "Traceback" not in unknown.message


def test_corrupt_trailer_falls_back_to_status() -> None:
    err = from_rpc_error(rpc_error(grpc.StatusCode.NOT_FOUND, "x", b"{not json"))
    assert isinstance(err, NotFound)


def test_the_cache_tags_of_a_not_found_cross_with_it() -> None:
    original = NotFound("Collection not found", cache_tags=("collections",))
    rebuilt = from_rpc_error(rpc_error(original.grpc_status, "x", original.to_trailer()))
    assert rebuilt.cache_tags == ("collections",)
    plain = NotFound("Content not found")
    assert from_rpc_error(rpc_error(plain.grpc_status, "x", plain.to_trailer())).cache_tags == ()
