"""The documented name patterns and the service's checks agree: what one refuses, so does the
other."""

from __future__ import annotations

import re
import unicodedata

import pytest
from heron_common.names import FILENAME_PATTERN, forbidden, is_folder

FILENAME = re.compile(FILENAME_PATTERN)


def test_every_format_and_control_character_is_out_of_the_documented_class() -> None:
    # Those Python's Unicode knows; a newer Unicode's new ones are refused by forbidden() alone.
    for cp in range(0x110000):
        c = chr(cp)
        category = unicodedata.category(c)
        if category in ("Cc", "Cf", "Zl", "Zp", "Cs") or c in "/\\":
            assert forbidden(c), hex(cp)
            if category != "Cs":
                assert not FILENAME.match(f"a{c}b"), hex(cp)


@pytest.mark.parametrize(
    "name, documented",
    [
        ("heron.jpg", True),
        ("...", True),
        (".env", True),
        ("two words.pdf", True),
        ("Ünïcødé 日本.png", True),
        (".", False),
        ("..", False),
        ("", False),
        ("a/b.png", False),
        ("a\\b.png", False),
        ("evil\u202egnp.exe", False),
        ("zero\u200bwidth.png", False),
        ("nul\x00.png", False),
    ],
)
def test_filenames(name: str, documented: bool) -> None:
    assert bool(FILENAME.match(name)) is documented
    if documented:
        assert not forbidden(name)


@pytest.mark.parametrize(
    "folder, ok",
    [
        ("", True),
        ("/", True),
        ("/birds", True),
        ("/birds/2026/", True),
        ("/" + "/".join(["a"] * 20), True),
        ("/" + "/".join(["a"] * 21), False),
        ("/" + "x" * 100, True),
        ("/" + "x" * 101, False),
        ("birds", False),
        ("//birds", False),
        ("/.hidden", False),
        ("/a/../b", False),
        ("/tab\there", False),
    ],
)
def test_folders(folder: str, ok: bool) -> None:
    assert is_folder(folder) is ok
