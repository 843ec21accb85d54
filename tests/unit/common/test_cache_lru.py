"""The memory tier's LRU: bounds by entries and bytes, expiry, the tag index, and the codecs."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
from heron_common.cache.codec import (
    MSGPACK,
    RAW_BYTES,
    RESPONSE,
    CachedResponse,
    pack_envelope,
    unpack_envelope,
)
from heron_common.cache.lru import BoundedLRU, MemoryEntry, MemoryLRU


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(
    size: int = 1, tags: tuple[str, ...] = (), expires_at: float = 2000.0
) -> MemoryEntry[str]:
    return MemoryEntry("v" * size, True, expires_at, size, tags)


def test_bounded_by_entry_count_evicting_least_recently_used() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_entries=3, max_bytes=10**6, clock=Clock())
    for key in "abc":
        assert lru.put(key, entry())
    assert lru.get("a") is not None  # a is now the most recently used
    lru.put("d", entry())
    assert len(lru) == 3
    assert "b" not in lru
    assert all(key in lru for key in "acd")
    assert lru.evictions == 1


def test_bounded_by_bytes() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_entries=100, max_bytes=100, clock=Clock())
    lru.put("a", entry(40))
    lru.put("b", entry(40))
    assert lru.bytes == 80
    lru.put("c", entry(40))
    assert "a" not in lru
    assert lru.bytes == 80
    assert lru.evictions == 1
    # Replacing a value accounts for the old one's size.
    lru.put("c", entry(10))
    assert lru.bytes == 50


def test_an_entry_larger_than_the_budget_is_not_stored_and_drops_the_old_value() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_entries=100, max_bytes=100, clock=Clock())
    lru.put("a", entry(10))
    lru.put("b", entry(10))
    assert not lru.put("a", entry(101))
    assert "a" not in lru
    assert "b" in lru  # nothing else was flushed to make room
    assert lru.bytes == 10


def test_expired_entries_are_dropped_on_read() -> None:
    clock = Clock()
    lru: MemoryLRU[str] = MemoryLRU(max_entries=10, max_bytes=1000, clock=clock)
    lru.put("a", entry(expires_at=clock.now + 5))
    clock.now += 4.9
    assert lru.get("a") is not None
    clock.now += 0.1
    assert lru.get("a") is None
    assert len(lru) == 0
    assert lru.bytes == 0
    assert lru.expirations == 1


def test_tag_index_follows_puts_evictions_and_removals() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_entries=2, max_bytes=1000, clock=Clock())
    lru.put("a", entry(tags=("t", "u")))
    lru.put("b", entry(tags=("t",)))
    lru.put("c", entry(tags=("u",)))  # evicts a
    assert lru.discard_tags(["t"]) == 1
    assert list(lru._data) == ["c"]
    assert lru.discard_tags(["u"]) == 1
    assert len(lru) == 0
    assert lru._by_tag == {}
    assert lru.bytes == 0


def test_discard_matching_uses_glob_patterns() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_entries=10, max_bytes=1000, clock=Clock())
    for key in ("posts:1", "posts:2", "pages:1"):
        lru.put(key, entry())
    assert lru.discard_matching("posts:*") == 2
    assert list(lru._data) == ["pages:1"]


def test_codecs_round_trip() -> None:
    value = {"a": [1, 2.5, None, True], "b": b"\x00\xff", "c": "é"}
    assert MSGPACK.decode(MSGPACK.encode(value)) == value
    assert RAW_BYTES.decode(RAW_BYTES.encode(b"body")) == b"body"
    response = CachedResponse(200, ((b"content-type", b"application/json"),), b'{"a":1}')
    assert RESPONSE.decode(RESPONSE.encode(response)) == response


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb(["200", [], b""])],
)
def test_response_codec_rejects_what_it_did_not_write(data: bytes) -> None:
    with pytest.raises(ValueError):
        RESPONSE.decode(data)


def test_envelope_round_trip_and_rejects_garbage() -> None:
    envelope = unpack_envelope(pack_envelope(b"payload", 1234.5, ["t1", "t2"]))
    assert envelope.payload == b"payload"
    assert envelope.expires_at == 1234.5
    assert envelope.tags == ("t1", "t2")
    assert unpack_envelope(pack_envelope(None, 1.0, [])).payload is None
    for garbage in (b"", b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([99, 1, [], None])):
        with pytest.raises(ValueError):
            unpack_envelope(garbage)


def test_the_bounded_lru_drops_the_least_recently_used() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)
    lru.put("a", 10)  # replacing keeps the bound and refreshes
    lru.put("d", 4)
    assert (lru.get("a"), lru.get("c"), lru.get("d")) == (10, None, 4)
    assert lru.pop("a") == 10 and lru.pop("a") is None and len(lru) == 1
