"""Collection field schemas, and the validation of item data against them.

A schema is a JSON object in the JSON-Schema-like shape SonicJS uses:
`{"type": "object", "properties": {"body": {"type": "richtext", "required": true}}}`. Each
property has a field type (SonicJS's `{"type": "string", "format": "richtext"}` spelling
names it by its format). Every key a schema accepts is enforced on every write; a key that
is not supported, or does not fit the field's type, is refused with the path that holds it.

`validate_data` checks a whole document and returns it normalized: rich text sanitized
(nh3, against an allowlist), datetimes in UTC, defaults applied on create. References are
returned for the caller to check against the store in one query.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import nh3
import re2  # type: ignore[import-untyped]
from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.ids import is_id

from heron_content.slugs import is_valid_slug, slug_advice

# field type -> the JSON type its values have
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
    "select": "scalar",
    "radio": "scalar",
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
# SonicJS names some field types by the `format` of a string field.
FORMATS: dict[str, str] = {
    "richtext": "richtext",
    "markdown": "markdown",
    "textarea": "textarea",
    "media": "media",
    "date": "date",
    "date-time": "datetime",
    "datetime": "datetime",
    "email": "email",
    "uri": "url",
    "url": "url",
    "color": "color",
    "slug": "slug",
    "reference": "reference",
}
TEXT_TYPES = frozenset(
    {"string", "text", "textarea", "richtext", "markdown", "email", "url", "slug", "color"}
)
CHOICE_TYPES = frozenset({"select", "radio", "multiselect"})
NUMBER_TYPES = frozenset({"number", "integer"})
LIST_TYPES = frozenset({"array", "multiselect"})
MULTIPLE_TYPES = frozenset({"reference", "media"})

# Keys every field may have: what it is, how editors see it, and the rules every type knows.
_COMMON_KEYS = frozenset(
    {"type", "format", "title", "description", "required", "default", "readonly", "unique"}
    | {"indexed", "placeholder", "helpText", "hidden", "widget"}
)
_KEYS_BY_TYPE: dict[str, frozenset[str]] = {
    **{t: frozenset({"minLength", "maxLength", "pattern", "enum"}) for t in TEXT_TYPES},
    "richtext": frozenset({"minLength", "maxLength"}),
    "number": frozenset({"minimum", "maximum", "enum"}),
    "integer": frozenset({"minimum", "maximum", "enum"}),
    "select": frozenset({"options", "enum"}),
    "radio": frozenset({"options", "enum"}),
    "multiselect": frozenset({"options", "enum", "minItems", "maxItems"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required"}),
    "reference": frozenset({"collection", "collections", "multiple"}),
    "media": frozenset({"multiple", "accept"}),
    "date": frozenset({"minimum", "maximum"}),
    "datetime": frozenset({"minimum", "maximum"}),
}
# Every key a field definition may have, whatever its type.
PROPERTY_KEYS = _COMMON_KEYS.union(*_KEYS_BY_TYPE.values())
_BOOLEAN_KEYS = ("required", "readonly", "unique", "indexed", "hidden", "multiple")
_TEXT_KEYS = ("title", "description", "placeholder", "helpText", "widget")
# Rules that would need the database per value (unique, indexed) apply to top-level fields.
_TOP_LEVEL_ONLY = ("unique", "indexed", "readonly", "default")

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
MAX_FIELDS = 200
MAX_DEPTH = 5
MAX_PATTERN_LENGTH = 500
MAX_OPTIONS = 500
MAX_EMAIL_LENGTH = 254
MAX_URL_LENGTH = 2048
# re2 matches in linear time whatever the pattern; this bounds its memory per pattern.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20


def empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def _schema_error(problems: list[ErrorDetail]) -> InvalidArgument:
    return InvalidArgument("the collection schema is invalid", problems)


def normalize_schema(raw: Any) -> dict[str, Any]:
    """Check a field schema and return it in canonical form (required names collected, each
    field's type resolved). Raises InvalidArgument listing every problem, each with the path
    of the offending part."""
    if raw is None:
        return empty_schema()
    if not isinstance(raw, dict):
        raise InvalidArgument(
            "schema must be a JSON object with a 'properties' object",
            [ErrorDetail("schema", "expected an object")],
        )
    problems: list[ErrorDetail] = []
    if raw.get("type", "object") != "object":
        problems.append(ErrorDetail("schema.type", "must be 'object'"))
    unknown = sorted(set(raw) - {"type", "properties", "required", "title", "description"})
    if unknown:
        problems.append(ErrorDetail("schema", f"unknown keys: {', '.join(unknown)}"))
    notes = {k: raw[k] for k in ("title", "description") if raw.get(k) is not None}
    for key, value in notes.items():
        if not isinstance(value, str):
            problems.append(ErrorDetail(f"schema.{key}", "must be a string"))
    properties, required = _properties(raw, "schema", problems, depth=0)
    if problems:
        raise _schema_error(problems)
    return {"type": "object", **notes, "properties": properties, "required": required}


def _properties(
    raw: dict[str, Any], path: str, problems: list[ErrorDetail], depth: int
) -> tuple[dict[str, Any], list[str]]:
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        problems.append(ErrorDetail(f"{path}.properties", "expected an object"))
        return {}, []
    if len(properties) > MAX_FIELDS:
        problems.append(ErrorDetail(f"{path}.properties", f"at most {MAX_FIELDS} fields"))
        return {}, []
    raw_required = raw.get("required", [])
    if not isinstance(raw_required, list) or not all(isinstance(r, str) for r in raw_required):
        problems.append(ErrorDetail(f"{path}.required", "must be a list of field names"))
        raw_required = []
    canonical: dict[str, Any] = {}
    required: list[str] = []
    for name, definition in properties.items():
        field_path = f"{path}.properties.{name}"
        if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
            problems.append(
                ErrorDetail(
                    field_path, "field names are letters, digits and _, not starting with a digit"
                )
            )
            continue
        own = definition.get("required") if isinstance(definition, dict) else None
        checked = _field(definition, field_path, problems, depth, top_level=depth == 0)
        if checked is None:
            continue
        if own is True or name in raw_required:
            required.append(name)
        canonical[name] = checked
    for name in raw_required:
        if name not in properties:
            problems.append(ErrorDetail(f"{path}.required", f"{name!r} is not a declared field"))
    return canonical, required


def _field(
    definition: Any, path: str, problems: list[ErrorDetail], depth: int, *, top_level: bool
) -> dict[str, Any] | None:
    """One field definition, checked, in canonical form (its `type` resolved from `format`);
    None (with the problems noted) when it cannot be used at all."""
    if not isinstance(definition, dict):
        problems.append(ErrorDetail(path, "expected an object with a 'type'"))
        return None
    if depth > MAX_DEPTH:
        problems.append(ErrorDetail(path, f"fields nest at most {MAX_DEPTH} levels deep"))
        return None
    field_type = definition.get("type")
    if not isinstance(field_type, str) or field_type not in FIELD_TYPES:
        problems.append(
            ErrorDetail(
                f"{path}.type",
                f"unknown field type {field_type!r}; one of: {', '.join(sorted(FIELD_TYPES))}",
            )
        )
        return None
    checked = {k: v for k, v in definition.items() if v is not None}  # null: "not set"
    fmt = checked.get("format")
    if fmt is not None:
        if field_type != "string" or fmt not in FORMATS:
            problems.append(
                ErrorDetail(
                    f"{path}.format",
                    "a format names a string field's type; one of: " + ", ".join(sorted(FORMATS))
                    if field_type == "string"
                    else f"not supported for {field_type} fields",
                )
            )
            return None
        field_type = FORMATS[fmt]
        del checked["format"]
    checked["type"] = field_type
    allowed = _COMMON_KEYS | _KEYS_BY_TYPE.get(field_type, frozenset())
    unknown = sorted(set(checked) - allowed)
    if unknown:
        problems.append(
            ErrorDetail(path, f"not supported for {field_type} fields: {', '.join(unknown)}")
        )
        return None
    before = len(problems)
    # `required`: true marks the field itself; an object's list names its own required fields.
    nested_required = checked.get("required") if field_type == "object" else None
    if isinstance(nested_required, list):
        del checked["required"]
    elif "required" in checked:
        if not isinstance(checked["required"], bool):
            problems.append(ErrorDetail(f"{path}.required", "must be true or false"))
        del checked["required"]
    for key in _BOOLEAN_KEYS:
        if key in checked and not isinstance(checked[key], bool):
            problems.append(ErrorDetail(f"{path}.{key}", "must be true or false"))
    for key in _TEXT_KEYS:
        if key in checked and not isinstance(checked[key], str):
            problems.append(ErrorDetail(f"{path}.{key}", "must be a string"))
    if not top_level:
        for key in _TOP_LEVEL_ONLY:
            if key in checked:
                problems.append(
                    ErrorDetail(f"{path}.{key}", "only a collection's own fields have this")
                )
    if checked.get("indexed") and (
        field_type in ("array", "multiselect", "json", "object")
        or (field_type in MULTIPLE_TYPES and checked.get("multiple"))
    ):
        problems.append(
            ErrorDetail(
                f"{path}.indexed", f"not supported for {field_type} fields with many values"
            )
        )
    if field_type in ("array", "multiselect", "json", "object") and checked.get("unique"):
        problems.append(ErrorDetail(f"{path}.unique", f"not supported for {field_type} fields"))
    _bounds(checked, path, problems, ("minLength", "maxLength"), integral=True)
    _bounds(checked, path, problems, ("minItems", "maxItems"), integral=True)
    if field_type in ("date", "datetime"):
        _date_bounds(checked, path, problems)
    else:
        _bounds(checked, path, problems, ("minimum", "maximum"), integral=False)
    if "pattern" in checked:
        _pattern(checked["pattern"], f"{path}.pattern", problems)
    if field_type in CHOICE_TYPES or "enum" in checked:
        _choices(checked, path, problems, field_type)
    if field_type == "array" and "items" in checked:
        items = _field(checked["items"], f"{path}.items", problems, depth + 1, top_level=False)
        if items is not None:
            checked["items"] = items
    if field_type == "object" and "properties" in checked:  # without them: any object
        raw_nested = {"properties": checked["properties"], "required": nested_required or []}
        nested, required = _properties(raw_nested, path, problems, depth + 1)
        checked["properties"] = nested
        if required:
            checked["required"] = required
        else:
            checked.pop("required", None)
    if field_type == "reference":
        _targets(checked, path, problems)
    if len(problems) > before:
        return None
    if "default" in checked:
        wrong: list[ErrorDetail] = []
        default = _value(checked, checked["default"], f"{path}.default", wrong, depth=0)
        if wrong:
            problems.extend(ErrorDetail(d.field, f"the default {d.message}") for d in wrong)
            return None
        checked["default"] = default
    return checked


def _bounds(
    checked: dict[str, Any],
    path: str,
    problems: list[ErrorDetail],
    keys: tuple[str, str],
    *,
    integral: bool,
) -> None:
    low_key, high_key = keys
    values: list[float] = []
    for key in keys:
        if key not in checked:
            continue
        value = checked[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append(ErrorDetail(f"{path}.{key}", "must be a finite number"))
        elif integral and (not float(value).is_integer() or value < 0):
            problems.append(ErrorDetail(f"{path}.{key}", "must be a whole number, 0 or more"))
        else:
            checked[key] = int(value) if integral else value
            values.append(value)
    if len(values) == 2 and checked[low_key] > checked[high_key]:
        problems.append(ErrorDetail(f"{path}.{low_key}", f"is above {high_key}"))


def _date_bounds(checked: dict[str, Any], path: str, problems: list[ErrorDetail]) -> None:
    parsed: dict[str, str] = {}
    for key in ("minimum", "maximum"):
        if key in checked:
            wrong: list[ErrorDetail] = []
            value = temporal(checked["type"], checked[key], f"{path}.{key}", wrong)
            problems.extend(wrong)
            if not wrong:
                checked[key] = parsed[key] = value
    if len(parsed) == 2 and parsed["minimum"] > parsed["maximum"]:
        problems.append(ErrorDetail(f"{path}.minimum", "is after maximum"))


def _pattern(pattern: Any, path: str, problems: list[ErrorDetail]) -> None:
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        problems.append(
            ErrorDetail(path, f"must be a regular expression of 1-{MAX_PATTERN_LENGTH}")
        )
        return
    try:
        _compiled(pattern)
    except re2.error as exc:
        problems.append(ErrorDetail(path, f"not a valid regular expression: {exc}"[:300]))


_PATTERNS: dict[str, Any] = {}


def _compiled(pattern: str) -> Any:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
        if len(_PATTERNS) < 10_000:
            _PATTERNS[pattern] = compiled
    return compiled


def _choices(
    checked: dict[str, Any], path: str, problems: list[ErrorDetail], field_type: str
) -> None:
    """`options` (values, or `{value, label}` objects) and `enum` are the allowed values."""
    raw = checked.get("options", checked.get("enum"))
    key = "options" if "options" in checked else "enum"
    if raw is None:
        problems.append(ErrorDetail(f"{path}.options", f"a {field_type} field lists its options"))
        return
    if not isinstance(raw, list) or not raw or len(raw) > MAX_OPTIONS:
        problems.append(ErrorDetail(f"{path}.{key}", f"must be a list of 1-{MAX_OPTIONS} values"))
        return
    values = _option_values(raw)
    element = FIELD_TYPES.get(field_type, "string")
    if element in ("array", "any"):
        element = "scalar"
    for n, value in enumerate(values):
        if not _json_type_ok(element, value):
            problems.append(ErrorDetail(f"{path}.{key}.{n}", f"expected {element}"))
    if len(set(map(repr, values))) != len(values):
        problems.append(ErrorDetail(f"{path}.{key}", "values must be distinct"))
    if "options" in checked and "enum" in checked:
        enum = checked["enum"]
        if not isinstance(enum, list) or sorted(map(repr, enum)) != sorted(map(repr, values)):
            problems.append(ErrorDetail(f"{path}.enum", "must list the same values as options"))


def _targets(checked: dict[str, Any], path: str, problems: list[ErrorDetail]) -> None:
    single, several = checked.get("collection"), checked.get("collections")
    if single is not None and several is not None:
        problems.append(ErrorDetail(path, "name collection or collections, not both"))
        return
    names = [single] if single is not None else several
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        problems.append(
            ErrorDetail(f"{path}.collection", "a reference names the collection it points to")
        )
        return
    checked.pop("collection", None)
    checked["collections"] = sorted(set(names))


def unique_fields(schema: dict[str, Any]) -> list[str]:
    """The collection's fields marked `unique`."""
    return [n for n, d in schema.get("properties", {}).items() if d.get("unique")]


def unique_values(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The values `data` holds of the unique fields; a missing, null or empty one is none."""
    return {n: data[n] for n in unique_fields(schema) if data.get(n) not in (None, "")}


def referenced_collections(schema: dict[str, Any]) -> set[str]:
    """The collections the schema's reference fields point to (to check that they exist)."""
    found: set[str] = set()
    for definition in _walk(schema.get("properties", {})):
        found.update(definition.get("collections", ()))
    return found


def _walk(properties: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for definition in properties.values():
        yield definition
        if definition["type"] == "object":
            yield from _walk(definition.get("properties", {}))
        if definition["type"] == "array" and "items" in definition:
            yield from _walk({"items": definition["items"]})


# -- item data ----------------------------------------------------------------------------------
@dataclass
class Reference:
    """An item id a reference field holds, for the caller to check in the store."""

    path: str
    item_id: str
    collections: tuple[str, ...]


@dataclass
class Checked:
    """Item data as it is stored, and the references it holds."""

    data: dict[str, Any]
    references: list[Reference] = field(default_factory=list)
    unique: dict[str, Any] = field(default_factory=dict)
    """The values of the collection's unique fields (set ones only)."""


def validate_data(
    schema: dict[str, Any],
    data: Any,
    *,
    previous: dict[str, Any] | None = None,
) -> Checked:
    """Check item data against a collection schema, normalize it, and return it with the
    references it holds. `previous` is the stored data of an update (read-only fields may
    not change); without it this is a create, and defaults fill the fields not given."""
    if not isinstance(data, dict):
        raise InvalidArgument(
            "data must be a JSON object", [ErrorDetail("data", "expected an object")]
        )
    properties: dict[str, Any] = schema.get("properties", {})
    problems: list[ErrorDetail] = []
    checked = Checked({})
    if previous is None:
        data = {
            **{n: copy.deepcopy(d["default"]) for n, d in properties.items() if "default" in d},
            **data,
        }
    context = _Context(checked.references, problems)
    out = _object_value(properties, schema.get("required", []), data, "data", context, 0)
    checked.data = out
    if previous is not None:
        for name, definition in properties.items():
            if definition.get("readonly") and out.get(name) != previous.get(name):
                problems.append(ErrorDetail(f"data.{name}", "is read-only"))
    checked.unique = unique_values(schema, out)
    if problems:
        raise InvalidArgument("the item data does not match the collection schema", problems[:50])
    return checked


# -- schema changes -----------------------------------------------------------------------------
# Keys that change how a field is shown, never which values it takes.
_COSMETIC_KEYS = frozenset(_TEXT_KEYS) | {"hidden", "indexed"}


def touched_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """The top-level fields a schema change may strand data in: removed ones, ones whose rules
    changed, and ones that became required. Empty: the change cannot affect any item."""
    old, new = before.get("properties", {}), after.get("properties", {})
    names = {n for n in old if n not in new}
    names |= {n for n, d in new.items() if n in old and _rules(old[n]) != _rules(d)}
    names |= set(after.get("required", [])) - set(before.get("required", []))
    return names


def _rules(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in _COSMETIC_KEYS}


def _kind(definition: dict[str, Any]) -> tuple[Any, ...]:
    """What a field's values are: a change of it is a retype."""
    items = definition.get("items")
    return (definition["type"], bool(definition.get("multiple")), items and _kind(items))


@dataclass
class Conformed:
    """An item's data fitted to a changed schema."""

    data: dict[str, Any]
    lost: set[str] = field(default_factory=set)
    """Fields whose value the change removes (dropped, or refused by the new rules)."""
    converted: set[str] = field(default_factory=set)
    """Retyped fields whose value the new type accepts (kept, normalized)."""
    unfixable: set[str] = field(default_factory=set)
    """Required fields left without a valid value and without a default to give them."""
    references: list[Reference] = field(default_factory=list)


def conform(
    before: dict[str, Any],
    after: dict[str, Any],
    data: dict[str, Any],
    drop: Iterable[str] = (),
) -> Conformed:
    """`data` (valid under `before`) as it would be under `after`: removed fields and values
    the new rules refuse are dropped, retyped values that fit are kept, and a required field
    left empty takes its default. `drop` names fields to drop as well (say, references the
    store does not hold)."""
    old, new = before.get("properties", {}), after.get("properties", {})
    required = after.get("required", [])
    present = {n for n, v in data.items() if v is not None}
    lost = {n for n in present if n not in new} | (present & set(drop))
    converted = {n for n in present - lost if n in old and _kind(old[n]) != _kind(new[n])}
    # Values the new rules refuse are dropped; a second pass checks the data without them
    # (what it still refuses is a required field left empty: nothing to drop, nothing to fill).
    for _ in range(2):
        kept = {n: v for n, v in data.items() if n not in lost and v is not None}
        for name in required:
            if kept.get(name) in (None, "", []) and "default" in new[name]:
                kept[name] = copy.deepcopy(new[name]["default"])
        context = _Context([], [])
        out = _object_value(new, required, kept, "data", context, 0)
        refused = {p.field.split(".")[1] for p in context.problems}
        newly = (refused & present) - lost
        if not newly:
            break
        lost |= newly
    return Conformed(out, lost, converted - lost, refused, context.references)


@dataclass
class _Context:
    references: list[Reference]
    problems: list[ErrorDetail]


def _object_value(
    properties: dict[str, Any],
    required: list[str],
    value: dict[str, Any],
    path: str,
    context: _Context,
    depth: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in required:
        if value.get(name) in (None, "", []):
            context.problems.append(ErrorDetail(f"{path}.{name}", "is required"))
    for name, item in value.items():
        definition = properties.get(name)
        if definition is None:
            context.problems.append(
                ErrorDetail(f"{path}.{name}", "is not a field of this collection")
            )
            continue
        if item is None:
            continue  # null: not set
        checked = _checked(definition, item, f"{path}.{name}", context, depth)
        if checked is not None:
            out[name] = checked
    return out


def _checked(
    definition: dict[str, Any], value: Any, path: str, context: _Context, depth: int
) -> Any:
    before = len(context.problems)
    result = _value(definition, value, path, context.problems, depth, context)
    return result if len(context.problems) == before else None


def _value(
    definition: dict[str, Any],
    value: Any,
    path: str,
    problems: list[ErrorDetail],
    depth: int,
    context: _Context | None = None,
) -> Any:
    """`value` checked against one field definition, normalized; problems are appended."""
    field_type = definition["type"]
    if field_type in MULTIPLE_TYPES and definition.get("multiple"):
        if not isinstance(value, list):
            problems.append(ErrorDetail(path, f"expected a list of ids ({field_type} field)"))
            return value
        return [
            _one_id(definition, v, f"{path}.{n}", problems, context) for n, v in enumerate(value)
        ]
    expected = FIELD_TYPES[field_type]
    if not _json_type_ok(expected, value):
        problems.append(ErrorDetail(path, f"expected {expected} ({field_type} field)"))
        return value
    if field_type in MULTIPLE_TYPES:
        return _one_id(definition, value, path, problems, context)
    if field_type in CHOICE_TYPES or "enum" in definition:
        _in_choices(definition, value, path, problems)
    if isinstance(value, str):
        return _text(definition, field_type, value, path, problems)
    if expected in ("number", "integer"):
        if "minimum" in definition and value < definition["minimum"]:
            problems.append(ErrorDetail(path, f"must be at least {definition['minimum']}"))
        if "maximum" in definition and value > definition["maximum"]:
            problems.append(ErrorDetail(path, f"must be at most {definition['maximum']}"))
        return value
    if isinstance(value, list):
        _count(definition, value, path, problems)
        if field_type == "multiselect":
            if len(set(map(repr, value))) != len(value):
                problems.append(ErrorDetail(path, "values must be distinct"))
            return value
        items = definition.get("items")
        if items is None:
            return value
        return [
            _value(items, v, f"{path}.{n}", problems, depth + 1, context)
            for n, v in enumerate(value)
        ]
    if field_type == "object" and "properties" in definition:
        nested = context or _Context([], problems)
        return _object_value(
            definition.get("properties", {}),
            definition.get("required", []),
            value,
            path,
            nested,
            depth + 1,
        )
    return value


def _one_id(
    definition: dict[str, Any],
    value: Any,
    path: str,
    problems: list[ErrorDetail],
    context: _Context | None,
) -> Any:
    if definition["type"] == "media":
        # A media id, or (as SonicJS stores media) the http(s) URL of a file elsewhere.
        if not isinstance(value, str) or not (is_id(value) or _is_web_url(value)):
            problems.append(ErrorDetail(path, "expected a media id or an http(s) URL"))
        return value
    if not isinstance(value, str) or not is_id(value):
        problems.append(ErrorDetail(path, "expected an item id"))
        return value
    if definition["type"] == "reference" and context is not None:
        context.references.append(Reference(path, value, tuple(definition["collections"])))
    return value


def _option_values(options: list[Any]) -> list[Any]:
    """The values of `options`: plain values, or those of `{value, label}` objects."""
    return [o["value"] if isinstance(o, dict) and "value" in o else o for o in options]


def _in_choices(
    definition: dict[str, Any], value: Any, path: str, problems: list[ErrorDetail]
) -> None:
    allowed = _option_values(definition.get("options", definition.get("enum")) or [])
    values = value if isinstance(value, list) else [value]
    # 1 is not True, nor 1.0 the option 1: a value matches an option of its own type.
    bad = [v for v in values if not any(v == a and type(v) is type(a) for a in allowed)]
    if bad:
        shown = ", ".join(repr(a) for a in allowed[:20])
        problems.append(ErrorDetail(path, f"must be one of {shown}"))


def _count(
    definition: dict[str, Any], value: list[Any], path: str, problems: list[ErrorDetail]
) -> None:
    if "minItems" in definition and len(value) < definition["minItems"]:
        problems.append(ErrorDetail(path, f"at least {definition['minItems']} values"))
    if "maxItems" in definition and len(value) > definition["maxItems"]:
        problems.append(ErrorDetail(path, f"at most {definition['maxItems']} values"))


def _text(
    definition: dict[str, Any], field_type: str, value: str, path: str, problems: list[ErrorDetail]
) -> str:
    if field_type == "richtext":
        value = nh3.clean(value)
    elif field_type in ("date", "datetime"):
        value = temporal(field_type, value, path, problems)
        if "minimum" in definition and value < definition["minimum"]:
            problems.append(ErrorDetail(path, f"must be on or after {definition['minimum']}"))
        if "maximum" in definition and value > definition["maximum"]:
            problems.append(ErrorDetail(path, f"must be on or before {definition['maximum']}"))
        return value
    elif field_type == "email":
        if len(value) > MAX_EMAIL_LENGTH or not EMAIL.fullmatch(value):
            problems.append(ErrorDetail(path, "must be an email address"))
    elif field_type == "url":
        if not _is_web_url(value):
            problems.append(ErrorDetail(path, "must be an http or https URL"))
    elif field_type == "slug":
        if not is_valid_slug(value):
            problems.append(ErrorDetail(path, slug_advice(value)))
    elif field_type == "color":
        if not COLOR.fullmatch(value):
            problems.append(ErrorDetail(path, "must be a hex color such as #1a2b3c"))
    if "minLength" in definition and len(value) < definition["minLength"]:
        problems.append(ErrorDetail(path, f"at least {definition['minLength']} characters"))
    if "maxLength" in definition and len(value) > definition["maxLength"]:
        problems.append(ErrorDetail(path, f"at most {definition['maxLength']} characters"))
    if "pattern" in definition and not _compiled(definition["pattern"]).search(value):
        problems.append(ErrorDetail(path, f"must match the pattern {definition['pattern'][:100]}"))
    return value


def _is_web_url(value: str) -> bool:
    if len(value) > MAX_URL_LENGTH or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def temporal(field_type: str, value: Any, path: str, problems: list[ErrorDetail]) -> str:
    """A date as YYYY-MM-DD, or a datetime in UTC as YYYY-MM-DDTHH:MM:SS.mmmZ (one without an
    offset is taken as UTC)."""
    if not isinstance(value, str):
        problems.append(ErrorDetail(path, "expected an ISO 8601 string"))
        return str(value)
    try:
        if field_type == "date":
            return date.fromisoformat(value).isoformat()
        moment = datetime.fromisoformat(value)
    except ValueError:
        example = "2024-05-31" if field_type == "date" else "2024-05-31T12:00:00Z"
        problems.append(ErrorDetail(path, f"must be an ISO 8601 {field_type}, e.g. {example}"))
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if expected == "scalar":
        return isinstance(value, str | bool) or _json_type_ok("number", value)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return False
