"""Usernames: the rule, and the one derived from an email when none is given."""

from __future__ import annotations

import itertools

import pytest
from heron_auth.profile import (
    check_name,
    check_username,
    derived_username,
    username_candidates,
)
from heron_common.errors import InvalidArgument


@pytest.mark.parametrize(
    ("email", "username"),
    [
        ("Jane.Doe+news@example.com", "jane.doe"),
        ("o'brien@example.com", "obrien"),
        ("Zoë@example.com", "zoe"),
        ("ab@example.com", "user_ab"),
        ("+@example.com", "user"),
        ("x" * 40 + "@example.com", "x" * 32),
    ],
)
def test_a_username_is_derived_from_the_local_part(email: str, username: str) -> None:
    assert derived_username(email) == username
    assert check_username(username) == username  # always valid


@pytest.mark.parametrize("bad", ["ab", "x" * 33, "with space", "ünï", "semi;colon", ""])
def test_the_username_rule_is_enforced(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="Validation failed") as refused:
        check_username(bad)
    assert refused.value.details[0].field == "username"


def test_usernames_are_case_insensitive() -> None:
    assert check_username("  Jane.Doe ") == "jane.doe"


def test_candidates_number_then_randomize_and_skip_reserved_names() -> None:
    first = list(itertools.islice(username_candidates("admin"), 3))
    assert first == ["admin2", "admin3", "admin4"]
    assert next(username_candidates("admin", allow_reserved=True)) == "admin"
    long = list(itertools.islice(username_candidates("y" * 32), 60))
    assert all(len(c) <= 32 for c in long) and len(set(long)) == 60


def test_names_are_bounded_and_trimmed() -> None:
    assert check_name("  Ada ", "firstName") == "Ada"
    with pytest.raises(InvalidArgument, match="firstName"):
        check_name("x" * 101, "firstName")
