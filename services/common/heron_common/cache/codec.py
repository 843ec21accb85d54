"""Cache value codecs (msgpack, raw bytes, ready-to-send responses) and the Redis envelope."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgpack  # type: ignore[import-untyped]

V = TypeVar("V")

# Bumped whenever the envelope layout changes: an old process reading a new envelope (or the
# reverse, during a rolling deploy) sees a version it does not know and treats it as a miss.
ENVELOPE_VERSION = 1


class Codec(Protocol[V]):
    """How a cache turns its values into bytes (for Redis, and to measure them) and back.

    `decode` may raise anything on input it does not accept: the cache treats that as a
    corrupt entry (a miss), never as an error.
    """

    def encode(self, value: V) -> bytes: ...

    def decode(self, data: bytes) -> V: ...


class MsgpackCodec:
    """JSON-like values plus raw bytes: dict, list, str, bytes, int, float, bool, None, and the
    dataclasses given as `records` (a service's typed rows), anywhere inside them.

    msgpack rather than JSON because bytes stay bytes (no base64) and it is never pickle, so a
    value read back from Redis cannot run code: a record is its fields in order, under the
    extension code of its position in `records`, and only those types are ever built. Tuples
    come back from Redis as lists. Changing a record's fields changes what is stored: bump the
    cache envelope or give the service a new namespace (an old entry is then a corrupt one,
    read as a miss).
    """

    def __init__(self, records: Sequence[type[Any]] = ()) -> None:
        if len(records) > 127:
            raise ValueError("at most 127 record types")
        self._records = tuple(records)
        self._codes = {cls: code for code, cls in enumerate(self._records)}

    def _default(self, value: Any) -> Any:
        code = self._codes.get(type(value))
        if code is None:
            raise TypeError(f"cannot cache a {type(value).__name__}")
        fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return msgpack.ExtType(code, self.encode(fields))

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code >= len(self._records):
            raise ValueError(f"unknown record code {code}")
        return self._records[code](*self.decode(data))

    def encode(self, value: Any) -> bytes:
        return bytes(msgpack.packb(value, use_bin_type=True, default=self._default))

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=self._ext_hook)


class BytesCodec:
    """Values that are already bytes (e.g. a serialized body): stored as they are."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A ready-to-send HTTP response: status, raw ASGI header pairs and body, serialized once."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class ResponseCodec:
    """`CachedResponse` as a three-element msgpack array; the body is copied, never re-encoded."""

    def encode(self, value: CachedResponse) -> bytes:
        headers = [[name, val] for name, val in value.headers]
        return bytes(msgpack.packb([value.status, headers, value.body], use_bin_type=True))

    def decode(self, data: bytes) -> CachedResponse:
        status, headers, body = msgpack.unpackb(data, raw=False)
        if not isinstance(status, int) or not isinstance(body, bytes):
            raise ValueError("not a cached response")
        pairs = tuple((_as_bytes(name), _as_bytes(val)) for name, val in headers)
        return CachedResponse(status, pairs, body)


def _as_bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("header names and values must be bytes")
    return value


MSGPACK = MsgpackCodec()
RAW_BYTES = BytesCodec()
RESPONSE = ResponseCodec()


@dataclass(frozen=True, slots=True)
class Envelope:
    """An L2 entry: the encoded value (None for a cached "not found"), expiry and tags.

    The tags travel with the value so that an L1 filled from Redis indexes them too, and the
    wall-clock expiry lets a reader report the remaining TTL without a second round trip.
    """

    payload: bytes | None
    expires_at: float
    tags: tuple[str, ...]

    def remaining(self) -> float:
        return self.expires_at - time.time()


def pack_envelope(payload: bytes | None, expires_at: float, tags: Sequence[str]) -> bytes:
    """Serialize an entry for Redis."""
    body = [ENVELOPE_VERSION, int(expires_at * 1000), list(tags), payload]
    return bytes(msgpack.packb(body, use_bin_type=True))


def unpack_envelope(data: bytes) -> Envelope:
    """Parse an entry read from Redis; raises `ValueError` on anything malformed."""
    try:
        version, expires_ms, tags, payload = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ValueError("undecodable cache entry") from exc
    if (
        version != ENVELOPE_VERSION
        or not isinstance(expires_ms, int)
        or not isinstance(tags, list)
        or not all(isinstance(tag, str) for tag in tags)
        or not (payload is None or isinstance(payload, bytes))
    ):
        raise ValueError("malformed cache entry")
    return Envelope(payload, expires_ms / 1000, tuple(tags))
