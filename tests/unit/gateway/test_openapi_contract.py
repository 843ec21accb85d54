"""The OpenAPI document states what the services enforce (tests/e2e/test_schemathesis.py fuzzes
the whole of it; these pin the parts that restate another package's rules)."""

from __future__ import annotations

import re
import sys
import typing
from typing import Any

import pytest
from fastapi import FastAPI
from heron_common import limits
from heron_common.security.permissions import BUILTIN_ROLE_NAMES, PUBLIC_ROLE, VALID_PERMISSIONS
from heron_content import schema as content_schema
from heron_gateway import schemas
from heron_gateway.app import create_app
from heron_gateway.settings import GatewaySettings
from pydantic import ValidationError


def _document() -> dict[str, Any]:
    app: Any = create_app(GatewaySettings())
    while not isinstance(app, FastAPI):  # unwrap the middleware
        app = app.app
    document: dict[str, Any] = app.openapi()
    return document


def test_field_schemas_are_documented_as_the_content_service_checks_them() -> None:
    assert set(typing.get_args(schemas.FieldType)) == set(content_schema.FIELD_TYPES)
    assert set(schemas.FieldDefinition.__annotations__) == set(content_schema.PROPERTY_KEYS)
    assert set(typing.get_args(schemas.FieldFormat)) == set(content_schema.FORMATS)
    names = _document()["components"]["schemas"]["FieldSchema"]["properties"]["properties"]
    documented = names["propertyNames"]
    # JSON Schema reads `$` as the end of the text, as `\Z` does in Python.
    pattern = re.compile(documented["pattern"].removesuffix("$") + r"\Z")
    for name in ("a", "_x1", "A" * 64, "A" * 65, "1a", "a-b", "é", "a\n", ""):
        expected = content_schema.FIELD_NAME.fullmatch(name) is not None
        stated = pattern.search(name) is not None and len(name) <= documented["maxLength"]
        assert stated == expected, name


def test_not_blank_is_what_strip_leaves_something_of() -> None:
    not_blank = re.compile(schemas.NOT_BLANK)
    every_space = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    for space in every_space:
        assert not not_blank.search(space * 3), hex(ord(space))
        assert not_blank.search(f"{space}a{space}")
    assert not not_blank.search("a\x00b")


def test_roles_and_permissions_are_the_built_in_ones() -> None:
    assert set(schemas.ASSIGNABLE_ROLES) == BUILTIN_ROLE_NAMES - {PUBLIC_ROLE}
    assert set(schemas.PERMISSION_NAMES) == VALID_PERMISSIONS


def _bounds(node: Any) -> list[float]:
    found: list[float] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
                if isinstance(value, int | float):  # not a property called `maximum`
                    found.append(value)
            found += _bounds(value)
    elif isinstance(node, list):
        for value in node:
            found += _bounds(value)
    return found


def test_every_numeric_bound_is_exact_as_a_float() -> None:
    """FastAPI writes bounds as floats: past 2**53 they no longer say what the server checks."""
    bounds = _bounds(_document())
    assert bounds
    assert all(abs(b) <= 2**53 - 1 for b in bounds), sorted(bounds)[-3:]


def test_the_document_names_no_unknown_keyword() -> None:
    """Constraints pydantic cannot place (e.g. after a validator) leak out as `ge`/`le`."""
    text = str(_document())
    assert "'ge':" not in text and "'le':" not in text


@pytest.mark.parametrize("value", [1, 2.0, 2**53 - 1])
def test_integers_are_json_integers(value: Any) -> None:
    assert schemas.ItemUpdate(version=value).version == int(value)


@pytest.mark.parametrize("value", [0, 2**53, 1.5, "1", True])
def test_other_versions_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        schemas.ItemUpdate.model_validate({"version": value})


def test_the_content_bounds_are_documented_from_the_one_source() -> None:
    document = _document()
    components = document["components"]["schemas"]
    assert typing.get_args(schemas.ItemStatus) == limits.ITEM_STATUSES
    assert components["ItemCreate"]["properties"]["title"]["maxLength"] == limits.MAX_TITLE_LENGTH
    assert components["ItemCreate"]["properties"]["slug"]["maxLength"] == limits.MAX_SLUG_LENGTH
    name = components["CollectionCreate"]["properties"]["name"]
    assert name["maxLength"] == limits.MAX_COLLECTION_NAME_LENGTH
    listing = document["paths"]["/api/content"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")["schema"]
    assert (limit["maximum"], limit["default"]) == (limits.MAX_PAGE_SIZE, limits.DEFAULT_PAGE_SIZE)
