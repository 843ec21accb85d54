"""Every field type and option: what a schema may say, and what item data it then accepts,
refuses (with the path of the field) or stores normalized."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from heron_common.errors import InvalidArgument
from heron_content.schema import normalize_schema, referenced_collections, validate_data

ID = str(uuid.uuid4())


def schema_of(**fields: Any) -> dict[str, Any]:
    return normalize_schema({"properties": fields})


def refused(schema: dict[str, Any], data: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate_data(schema, data, **kw)
    return {d.field: d.message for d in caught.value.details}


def schema_refused(raw: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        normalize_schema(raw)
    return {d.field: d.message for d in caught.value.details}


# (field definition, accepted values, refused values)
CASES: list[tuple[dict[str, Any], list[Any], list[Any]]] = [
    ({"type": "string", "minLength": 2, "maxLength": 4}, ["ab", "abcd"], ["a", "abcde", 3]),
    ({"type": "text"}, ["", "long text"], [1, True, [], {}]),
    ({"type": "textarea", "pattern": "^[a-z]+$"}, ["abc"], ["ABC", "a b"]),
    ({"type": "markdown"}, ["# Title"], [5]),
    ({"type": "email"}, ["a@example.com", "a.b+c@sub.example.org"], ["a@b", "no", "a @b.c"]),
    (
        {"type": "url"},
        ["https://example.com/x?y=1", "http://h.io"],
        ["ftp://x.org", "javascript:alert(1)", "https://", "/rel"],
    ),
    ({"type": "slug"}, ["my-post-2"], ["My Post", "a--b", "-a"]),
    ({"type": "color"}, ["#fff", "#1a2B3c", "#11223344"], ["fff", "#ggg", "red"]),
    ({"type": "number", "minimum": 0, "maximum": 10}, [0, 2.5, 10], [-1, 10.5, "1", True]),
    ({"type": "integer", "minimum": 1}, [1, 99], [0, 1.5, "2", False]),
    ({"type": "boolean"}, [True, False], [0, "true"]),
    ({"type": "checkbox"}, [True], [1]),
    (
        {"type": "date", "minimum": "2020-01-01"},
        ["2024-02-29"],
        ["2023-02-29", "2019-12-31", "01/02/2024"],
    ),
    ({"type": "datetime"}, ["2024-05-31T12:00:00Z", "2024-05-31T14:00:00+02:00"], ["yesterday", 5]),
    ({"type": "select", "options": ["a", "b"]}, ["a"], ["c", ["a"]]),
    ({"type": "radio", "options": [{"value": 1, "label": "One"}]}, [1], [2, True, "1"]),
    (
        {"type": "multiselect", "options": ["x", "y", "z"], "maxItems": 2},
        [["x"], ["x", "z"]],
        [["w"], ["x", "x"], ["x", "y", "z"], "x"],
    ),
    ({"type": "json"}, [{"any": [1, {"thing": None}]}, 3, "s"], []),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 1}, [[1, 2]], [[], ["1"], [1.5]]),
    ({"type": "array"}, [[1, "a", {}]], ["a", {}]),
    (
        {"type": "object", "properties": {"n": {"type": "integer", "required": True}}},
        [{"n": 1}],
        [{}, {"n": "1"}, {"n": 1, "x": 2}, []],
    ),
    ({"type": "object"}, [{"free": "form"}], [[]]),
    ({"type": "reference", "collection": "authors"}, [ID], ["not-an-id", 5]),
    (
        {"type": "reference", "collections": ["a", "b"], "multiple": True},
        [[ID, ID], []],
        [ID, ["x"]],
    ),
    ({"type": "media"}, [ID, "https://cdn.example.com/a.png"], ["file.png", "ftp://x.org/a"]),
]


@pytest.mark.parametrize(("definition", "good", "bad"), CASES, ids=[c[0]["type"] for c in CASES])
def test_each_field_type_accepts_and_refuses(
    definition: dict[str, Any], good: list[Any], bad: list[Any]
) -> None:
    schema = schema_of(f=definition)
    for value in good:
        validate_data(schema, {"f": value})
    for value in bad:
        problems = refused(schema, {"f": value})
        assert "data.f" in {p.split(".", 2)[0] + "." + p.split(".", 2)[1] for p in problems}, (
            value,
            problems,
        )


def test_rich_text_is_sanitized_on_write() -> None:
    schema = schema_of(body={"type": "richtext"})
    stored = validate_data(
        schema,
        {"body": '<p onclick="x()">Hi<script>alert(1)</script><img src="a.png" onerror="y()"></p>'},
    ).data["body"]
    assert "<script" not in stored and "onerror" not in stored and "onclick" not in stored
    assert stored.startswith("<p>Hi") and 'src="a.png"' in stored
    link = validate_data(schema, {"body": '<a href="javascript:alert(1)">x</a>'}).data["body"]
    assert "javascript" not in link


def test_sonicjs_formats_name_the_type() -> None:
    schema = normalize_schema(
        {
            "properties": {
                "c": {"type": "string", "format": "richtext"},
                "d": {"type": "string", "format": "date-time"},
            }
        }
    )
    assert schema["properties"]["c"]["type"] == "richtext"
    stored = validate_data(
        schema, {"c": "<b>x</b><script></script>", "d": "2024-05-31T14:00:00+02:00"}
    )
    assert stored.data == {"c": "<b>x</b>", "d": "2024-05-31T12:00:00.000Z"}
    assert (
        "format"
        in schema_refused({"properties": {"x": {"type": "string", "format": "zip"}}})[
            "schema.properties.x.format"
        ]
    )


def test_datetimes_are_stored_in_utc() -> None:
    schema = schema_of(at={"type": "datetime"}, on={"type": "date"})
    stored = validate_data(schema, {"at": "2024-05-31T23:30:00-02:00", "on": "2024-05-31"}).data
    assert stored == {"at": "2024-06-01T01:30:00.000Z", "on": "2024-05-31"}
    assert (
        validate_data(schema, {"at": "2024-05-31T10:00:00"}).data["at"]
        == "2024-05-31T10:00:00.000Z"
    )


def test_nested_errors_name_the_nested_path() -> None:
    schema = schema_of(
        seo={"type": "object", "properties": {"title": {"type": "string", "maxLength": 3}}},
        tags={"type": "array", "items": {"type": "string", "minLength": 2}},
    )
    problems = refused(schema, {"seo": {"title": "toolong"}, "tags": ["ok", "x"]})
    assert set(problems) == {"data.seo.title", "data.tags.1"}


def test_defaults_fill_a_create_and_readonly_fields_never_change() -> None:
    schema = schema_of(
        views={"type": "integer", "default": 0},
        code={"type": "string", "readonly": True},
        tags={"type": "array", "default": []},
    )
    created = validate_data(schema, {"code": "A1"}).data
    assert created == {"views": 0, "code": "A1", "tags": []}
    created["tags"].append("mutated")
    assert validate_data(schema, {}).data["tags"] == []  # each create gets its own copy
    assert validate_data(schema, {"code": "A1", "views": 3}, previous=created).data["views"] == 3
    assert refused(schema, {"code": "B2"}, previous={"code": "A1"}) == {"data.code": "is read-only"}
    assert "views" not in validate_data(schema, {}, previous={}).data  # no default on update


def test_required_fields_and_unknown_fields() -> None:
    schema = normalize_schema(
        {
            "properties": {"a": {"type": "string", "required": True}, "b": {"type": "string"}},
            "required": ["b"],
        }
    )
    assert schema["required"] == ["a", "b"]
    assert refused(schema, {"a": "", "c": 1}) == {
        "data.a": "is required",
        "data.b": "is required",
        "data.c": "is not a field of this collection",
    }


def test_unique_values_are_collected_for_the_store() -> None:
    schema = schema_of(sku={"type": "string", "unique": True}, name={"type": "string"})
    assert validate_data(schema, {"sku": "X-1", "name": "n"}).unique == {"sku": "X-1"}
    assert validate_data(schema, {"name": "n"}).unique == {}


def test_references_are_returned_for_one_lookup() -> None:
    schema = schema_of(
        author={"type": "reference", "collection": "authors"},
        related={"type": "reference", "collection": "posts", "multiple": True},
    )
    other = str(uuid.uuid4())
    checked = validate_data(schema, {"author": ID, "related": [ID, other]})
    assert [(r.path, r.item_id, r.collections) for r in checked.references] == [
        ("data.author", ID, ("authors",)),
        ("data.related.0", ID, ("posts",)),
        ("data.related.1", other, ("posts",)),
    ]
    assert referenced_collections(schema) == {"authors", "posts"}


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"type": "number", "minimum": 5, "maximum": 1}, "schema.properties.f.minimum"),
        ({"type": "string", "minLength": -1}, "schema.properties.f.minLength"),
        ({"type": "string", "maxLength": 2.5}, "schema.properties.f.maxLength"),
        ({"type": "string", "enum": ["a"], "default": "b"}, "schema.properties.f.default"),
        ({"type": "integer", "default": "1"}, "schema.properties.f.default"),
        ({"type": "string", "required": "yes"}, "schema.properties.f.required"),
        ({"type": "string", "unique": 1}, "schema.properties.f.unique"),
        ({"type": "string", "pattern": "(unclosed"}, "schema.properties.f.pattern"),
        ({"type": "string", "pattern": "a" * 501}, "schema.properties.f.pattern"),
        ({"type": "number", "minLength": 1}, "schema.properties.f"),
        ({"type": "boolean", "options": [True]}, "schema.properties.f"),
        ({"type": "select"}, "schema.properties.f.options"),
        ({"type": "select", "options": ["a", "a"]}, "schema.properties.f.options"),
        ({"type": "reference"}, "schema.properties.f.collection"),
        ({"type": "array", "items": {"type": "nope"}}, "schema.properties.f.items.type"),
        (
            {"type": "array", "items": {"type": "string", "unique": True}},
            "schema.properties.f.items.unique",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string", "default": "d"}}},
            "schema.properties.f.properties.x.default",
        ),
        ({"type": "date", "minimum": "2024-13-01"}, "schema.properties.f.minimum"),
        (
            {"type": "date", "minimum": "2024-02-01", "maximum": "2024-01-01"},
            "schema.properties.f.minimum",
        ),
        ({"type": "json", "unique": True}, "schema.properties.f.unique"),
        ({"type": "multiselect", "options": ["a"], "indexed": True}, "schema.properties.f.indexed"),
    ],
)
def test_schemas_that_cannot_hold_are_refused_with_the_path(
    definition: dict[str, Any], path: str
) -> None:
    assert path in schema_refused({"properties": {"f": definition}})


def test_a_pathological_pattern_runs_in_linear_time() -> None:
    # Catastrophic for a backtracking engine; re2 answers at once.
    schema = schema_of(f={"type": "string", "pattern": "^(a+)+$"})
    assert refused(schema, {"f": "a" * 5000 + "!"}) == {"data.f": "must match the pattern ^(a+)+$"}


def test_a_schema_keeps_its_title_and_description_and_they_are_text() -> None:
    kept = normalize_schema({"title": "Posts", "description": "Articles", "properties": {}})
    assert (kept["title"], kept["description"]) == ("Posts", "Articles")
    assert "schema.description" in schema_refused({"description": {}, "properties": {}})
