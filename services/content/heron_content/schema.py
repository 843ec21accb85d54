"""Collection field schemas and the validation of item data against them.

A schema is a JSON object in the JSON-Schema-like shape SonicJS uses:
`{"type": "object", "properties": {"body": {"type": "richtext", "required": true}}}`.
Each property has a field type; SonicJS's field type names map onto a small set of JSON types.
"""

from __future__ import annotations

import math
import re
from typing import Any

from heron_common.errors import ErrorDetail, InvalidArgument

# field type -> the JSON type its values must have
FIELD_TYPES: dict[str, str] = {
    "string": "string",
    "text": "string",
    "textarea": "string",
    "richtext": "string",
    "markdown": "string",
    "email": "string",
    "url": "string",
    "slug": "string",
    "color": "string",
    "date": "string",
    "datetime": "string",
    "select": "string",
    "radio": "string",
    "media": "string",
    "reference": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "checkbox": "boolean",
    "array": "array",
    "multiselect": "array",
    "object": "object",
    "json": "any",
}

_PROPERTY_KEYS = frozenset(
    {
        "type",
        "title",
        "description",
        "required",
        "default",
        "enum",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "placeholder",
        "helpText",
        "format",
        "items",
        "options",
        "collection",
        "unique",
        "readonly",
        "hidden",
        "widget",
    }
)
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_FIELDS = 200


def empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def normalize_schema(raw: Any) -> dict[str, Any]:
    """Check a field schema and return it in canonical form (required names collected).

    Raises InvalidArgument listing every problem, each with the path of the offending part.
    """
    if raw is None:
        return empty_schema()
    problems: list[ErrorDetail] = []
    if not isinstance(raw, dict):
        raise InvalidArgument(
            "schema must be a JSON object with a 'properties' object",
            [ErrorDetail("schema", "expected an object")],
        )
    if raw.get("type", "object") != "object":
        problems.append(ErrorDetail("schema.type", "must be 'object'"))
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        raise InvalidArgument(
            "schema.properties must be an object mapping field names to field definitions",
            [ErrorDetail("schema.properties", "expected an object")],
        )
    if len(properties) > MAX_FIELDS:
        problems.append(ErrorDetail("schema.properties", f"at most {MAX_FIELDS} fields"))
    required: list[str] = []
    raw_required = raw.get("required", [])
    if not isinstance(raw_required, list) or not all(isinstance(r, str) for r in raw_required):
        problems.append(ErrorDetail("schema.required", "must be a list of field names"))
        raw_required = []
    canonical: dict[str, Any] = {}
    for name, definition in properties.items():
        path = f"schema.properties.{name}"
        if not FIELD_NAME.fullmatch(name):
            problems.append(
                ErrorDetail(
                    path, "field names are letters, digits and _, not starting with a digit"
                )
            )
            continue
        if not isinstance(definition, dict):
            problems.append(ErrorDetail(path, "expected an object with a 'type'"))
            continue
        field_type = definition.get("type")
        if not isinstance(field_type, str) or field_type not in FIELD_TYPES:
            problems.append(
                ErrorDetail(
                    f"{path}.type",
                    f"unknown field type {field_type!r}; one of: {', '.join(sorted(FIELD_TYPES))}",
                )
            )
            continue
        unknown = sorted(set(definition) - _PROPERTY_KEYS)
        if unknown:
            problems.append(ErrorDetail(path, f"unknown keys: {', '.join(unknown)}"))
        enum = definition.get("enum")
        if enum is not None and (not isinstance(enum, list) or not enum):
            problems.append(ErrorDetail(f"{path}.enum", "must be a non-empty list"))
        field = dict(definition)
        for bound in ("minLength", "maxLength", "minimum", "maximum"):
            if bound not in definition:
                continue
            value = definition[bound]
            if value is None:  # "no bound", as a client may spell it
                del field[bound]
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                problems.append(ErrorDetail(f"{path}.{bound}", "must be a finite number"))
        if field.pop("required", False) is True or name in raw_required:
            required.append(name)
        canonical[name] = field
    for name in raw_required:
        if name not in properties:
            problems.append(ErrorDetail("schema.required", f"{name!r} is not a declared field"))
    if problems:
        raise InvalidArgument("the collection schema is invalid", problems)
    return {"type": "object", "properties": canonical, "required": required}


def _json_type_ok(expected: str, value: Any) -> bool:
    if expected == "any":
        return True
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return False


def validate_data(schema: dict[str, Any], data: Any) -> None:
    """Check item data against a collection schema; raise InvalidArgument with every problem."""
    if not isinstance(data, dict):
        raise InvalidArgument(
            "data must be a JSON object", [ErrorDetail("data", "expected an object")]
        )
    properties: dict[str, Any] = schema.get("properties", {})
    problems: list[ErrorDetail] = []
    for name in schema.get("required", []):
        if data.get(name) in (None, ""):
            problems.append(ErrorDetail(f"data.{name}", "is required"))
    for name, value in data.items():
        definition = properties.get(name)
        if definition is None:
            problems.append(ErrorDetail(f"data.{name}", "is not a field of this collection"))
            continue
        if value is None:
            continue
        expected = FIELD_TYPES[definition["type"]]
        if not _json_type_ok(expected, value):
            problems.append(
                ErrorDetail(f"data.{name}", f"expected {expected} ({definition['type']} field)")
            )
            continue
        enum = definition.get("enum")
        if enum is not None:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in enum]
            if bad:
                problems.append(ErrorDetail(f"data.{name}", f"must be one of {enum}"))
        if isinstance(value, str):
            if "maxLength" in definition and len(value) > definition["maxLength"]:
                problems.append(
                    ErrorDetail(f"data.{name}", f"at most {definition['maxLength']} characters")
                )
            if "minLength" in definition and len(value) < definition["minLength"]:
                problems.append(
                    ErrorDetail(f"data.{name}", f"at least {definition['minLength']} characters")
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in definition and value < definition["minimum"]:
                problems.append(ErrorDetail(f"data.{name}", f"at least {definition['minimum']}"))
            if "maximum" in definition and value > definition["maximum"]:
                problems.append(ErrorDetail(f"data.{name}", f"at most {definition['maximum']}"))
    if problems:
        raise InvalidArgument("the item data does not match the collection schema", problems)
