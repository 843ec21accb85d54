from __future__ import annotations

from typing import Any

import pytest
from heron_common.errors import InvalidArgument
from heron_content.schema import normalize_schema, validate_data

SCHEMA = normalize_schema(
    {
        "properties": {
            "title2": {"type": "string", "maxLength": 5},
            "count": {"type": "integer", "minimum": 0},
            "price": {"type": "number"},
            "on": {"type": "boolean"},
            "tags": {"type": "array"},
            "meta": {"type": "object"},
            "kind": {"type": "select", "enum": ["a", "b"]},
            "body": {"type": "richtext", "required": True},
        },
        "required": ["count"],
    }
)


def fields(exc: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [d.field for d in exc.value.details]


def test_required_fields_collected() -> None:
    assert sorted(SCHEMA["required"]) == ["body", "count"]
    assert "required" not in SCHEMA["properties"]["body"]


def test_valid_data_passes() -> None:
    validate_data(
        SCHEMA,
        {"count": 1, "price": 2, "on": False, "tags": [], "meta": {}, "kind": "a", "body": "x"},
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"count": 1}, "data.body"),
        ({"body": "x"}, "data.count"),
        ({"body": "x", "count": True}, "data.count"),
        ({"body": "x", "count": 1.5}, "data.count"),
        ({"body": "x", "count": -1}, "data.count"),
        ({"body": "x", "count": 1, "price": "1"}, "data.price"),
        ({"body": "x", "count": 1, "on": 1}, "data.on"),
        ({"body": "x", "count": 1, "title2": "toolong"}, "data.title2"),
        ({"body": "x", "count": 1, "kind": "c"}, "data.kind"),
        ({"body": "x", "count": 1, "extra": 1}, "data.extra"),
        ({"body": "", "count": 1}, "data.body"),
    ],
)
def test_invalid_data(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_data(SCHEMA, data)
    assert field in fields(exc)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_data(SCHEMA, {"count": "x", "on": "y"})
    assert set(fields(exc)) == {"data.body", "data.count", "data.on"}


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"properties": {"x": {"type": "nope"}}}, "schema.properties.x.type"),
        ({"properties": {"x": {"type": {}}}}, "schema.properties.x.type"),
        ({"properties": {"x": {"type": ["string"]}}}, "schema.properties.x.type"),
        ({"properties": {"1x": {"type": "string"}}}, "schema.properties.1x"),
        ({"properties": {"x": "string"}}, "schema.properties.x"),
        ({"properties": {"x": {"type": "string", "bogus": 1}}}, "schema.properties.x"),
        ({"properties": {}, "required": ["y"]}, "schema.required"),
        ({"type": "array"}, "schema.type"),
        ({"properties": []}, "schema.properties"),
        ([], "schema"),
    ],
)
def test_invalid_schemas(schema: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_schema(schema)
    assert field in fields(exc)


def test_missing_schema_is_empty() -> None:
    assert normalize_schema(None) == {"type": "object", "properties": {}, "required": []}
