"""The bus's reading of a subscription's stream: frames split anywhere are put back together."""

from __future__ import annotations

import pytest
from heron_common.cache.bus import ProtocolError, PushParser, command

STREAM = (
    b"*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n"
    + b"*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$6\r\n\x00\r\n\xffab\r\n"
    + b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    + b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$1\r\nz\r\n"
    + b"+PONG\r\n"
)
FRAMES = [
    [b"subscribe", b"chan", 1],
    [b"message", b"chan", b"\x00\r\n\xffab"],  # a payload may hold CR LF
    [b"pong", b""],
    [b"message", b"chan", b"z"],
    b"PONG",
]


def test_whole_stream() -> None:
    assert PushParser().feed(STREAM) == FRAMES


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_stream_split_into_pieces(size: int) -> None:
    parser = PushParser()
    frames = []
    for start in range(0, len(STREAM), size):
        frames += parser.feed(STREAM[start : start + size])
    assert frames == FRAMES


def test_a_null_bulk_string_takes_no_payload() -> None:
    assert PushParser().feed(b"*2\r\n$-1\r\n:3\r\n") == [[b"", 3]]


def test_an_error_reply_is_refused() -> None:
    with pytest.raises(ProtocolError, match="NOAUTH"):
        PushParser().feed(b"-NOAUTH Authentication required.\r\n")


def test_command_encoding() -> None:
    assert command(b"SUBSCRIBE", b"a:b") == b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na:b\r\n"
