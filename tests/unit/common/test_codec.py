"""The msgpack codec carries a service's typed rows through Redis, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import msgpack  # type: ignore[import-untyped]
import pytest
from heron_common.cache.codec import MsgpackCodec


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    count: int
    note: str | None


@dataclass(frozen=True)
class Other:
    name: str


def test_records_round_trip_inside_json_like_values() -> None:
    codec = MsgpackCodec([Row, Other])
    value = {"rows": [Row("a", 1, None), Row("b", 2, "x")], "total": 2, "o": Other("n")}
    assert codec.decode(codec.encode(value)) == value


def test_a_type_that_is_not_registered_is_refused() -> None:
    with pytest.raises(TypeError, match="Other"):
        MsgpackCodec([Row]).encode(Other("n"))


def test_an_unknown_record_code_is_a_corrupt_entry() -> None:
    forged = msgpack.packb(msgpack.ExtType(5, msgpack.packb(["a"])), use_bin_type=True)
    with pytest.raises(ValueError, match="unknown record"):
        MsgpackCodec([Row]).decode(forged)
