"""How item data is fitted to a changed collection schema (heron_content.schema.conform)."""

from __future__ import annotations

from typing import Any

from heron_content.schema import conform, normalize_schema, touched_fields


def _schema(**properties: Any) -> dict[str, Any]:
    return normalize_schema({"properties": properties})


BEFORE = _schema(
    title={"type": "string"},
    price={"type": "string"},
    body={"type": "text", "maxLength": 100},
    tags={"type": "array", "items": {"type": "string"}},
)


def test_cosmetic_and_additive_changes_touch_nothing() -> None:
    after = _schema(
        title={"type": "string", "description": "Shown in lists"},
        price={"type": "string", "placeholder": "9.99"},
        body={"type": "text", "maxLength": 100, "helpText": "The story"},
        tags={"type": "array", "items": {"type": "string"}},
        extra={"type": "integer", "default": 1},
    )
    assert touched_fields(BEFORE, after) == set()


def test_removed_retyped_tightened_and_newly_required_fields_are_touched() -> None:
    after = normalize_schema(
        {
            "properties": {
                "title": {"type": "string"},
                "price": {"type": "number"},
                "body": {"type": "text", "maxLength": 10},
            },
            "required": ["title"],
        }
    )
    assert touched_fields(BEFORE, after) == {"price", "body", "tags", "title"}


def test_a_removed_field_is_lost_and_a_fitting_retype_is_converted() -> None:
    after = _schema(title={"type": "string"}, price={"type": "datetime"}, body={"type": "text"})
    data = {"title": "T", "price": "2024-05-31T12:00:00+02:00", "tags": ["a"], "body": "b"}
    fit = conform(BEFORE, after, data)
    assert fit.lost == {"tags"} and fit.converted == {"price"} and not fit.unfixable
    assert fit.data == {"title": "T", "price": "2024-05-31T10:00:00.000Z", "body": "b"}


def test_values_the_new_rules_refuse_are_dropped() -> None:
    after = _schema(
        title={"type": "string"},
        price={"type": "number"},
        body={"type": "text", "maxLength": 3},
        tags={"type": "array", "items": {"type": "string"}},
    )
    fit = conform(BEFORE, after, {"title": "T", "price": "cheap", "body": "too long"})
    assert fit.lost == {"price", "body"} and fit.converted == set()
    assert fit.data == {"title": "T"}


def test_a_required_field_takes_its_default_or_is_unfixable() -> None:
    with_default = normalize_schema(
        {
            "properties": {**BEFORE["properties"], "rank": {"type": "integer", "default": 3}},
            "required": ["rank"],
        }
    )
    fit = conform(BEFORE, with_default, {"title": "T"})
    assert fit.data == {"title": "T", "rank": 3} and not fit.lost and not fit.unfixable
    without = normalize_schema({"properties": BEFORE["properties"], "required": ["title"]})
    assert conform(BEFORE, without, {"price": "1"}).unfixable == {"title"}
    assert conform(BEFORE, without, {"title": "T"}).unfixable == set()


def test_dropping_named_fields_counts_them_as_lost() -> None:
    fit = conform(BEFORE, BEFORE, {"title": "T", "price": "1"}, drop={"price"})
    assert fit.lost == {"price"} and fit.data == {"title": "T"}
