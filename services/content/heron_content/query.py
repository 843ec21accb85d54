"""The list query language on the content service's side: a canonical `ListQuery`
(heron_common.query) checked against the collection's schema and compiled to SQL.

Every field path is resolved against an allowlist built from the schema (the item's own
columns and the schema's `data` fields, nested objects included, and through a reference one
hop into the items it points to); every operator must fit the field's type; every value is
typed by its field and bound as a parameter. Field paths become SQL text only after they have
matched the schema's field names (letters, digits and `_`), which is also what lets an
expression index on a field (`indexed: true`) serve the query.

Semantics, the same on PostgreSQL and SQLite:
- a field that is not set matches only `_null` and `_empty` (every comparison with it is false,
  `_neq` and `_nin` included), and `_not` matches exactly what its filter does not;
- text compares by code point (PostgreSQL `COLLATE "C"`), the `i` operators and `_like`
  after `lower()` on both sides, `_like` with `%` and `_` as wildcards and `\\` to escape them;
- sorting puts items without the field last, whatever the direction, and always ends on the
  id, in the direction of the last key, so every order is total (and a cursor is exact).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.query import FLAG_OPERATORS, LIST_OPERATORS
from sqlalchemy import (
    Boolean,
    Numeric,
    Text,
    and_,
    case,
    cast,
    collate,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from heron_content.schema import TEXT_TYPES, temporal

# The item's own fields a query may name, with their kinds.
OWN_FIELDS: dict[str, str] = {
    "id": "text",
    "title": "text",
    "slug": "text",
    "status": "text",
    "author_id": "text",
    "created_at": "ms",
    "updated_at": "ms",
    "published_at": "ms",
    "version": "int",
}
DEFAULT_SORT = ("-created_at",)

_ORDERED = frozenset({"_eq", "_neq", "_lt", "_lte", "_gt", "_gte"})
_MEMBERSHIP = frozenset({"_in", "_nin", "_between", "_nbetween"})
_TEXT = frozenset(
    {"_contains", "_ncontains", "_icontains", "_like"}
    | {"_starts_with", "_istarts_with", "_ends_with", "_iends_with"}
)
_FLAGS = FLAG_OPERATORS
_LIST = frozenset({"_contains", "_ncontains", "_in", "_all"})
_RELATION = frozenset({"_some", "_none"})
# kind -> the operators that fit it
KIND_OPERATORS: dict[str, frozenset[str]] = {
    "text": _ORDERED | _MEMBERSHIP | _TEXT | _FLAGS,
    "date": _ORDERED | _MEMBERSHIP | _FLAGS,
    "datetime": _ORDERED | _MEMBERSHIP | _FLAGS,
    "number": _ORDERED | _MEMBERSHIP | _FLAGS,
    "int": _ORDERED | _MEMBERSHIP | _FLAGS,
    "ms": _ORDERED | _MEMBERSHIP | _FLAGS,
    "boolean": frozenset({"_eq", "_neq"}) | _FLAGS,
    "list": _LIST | _FLAGS,
    "ref": frozenset({"_eq", "_neq", "_in", "_nin"}) | _RELATION | _FLAGS,
    "refs": _LIST | _RELATION | _FLAGS,
    "object": _FLAGS,
}
_SORTABLE = frozenset({"text", "date", "datetime", "number", "int", "ms", "boolean", "ref"})
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _invalid(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}", [ErrorDetail(where, message)])


# -- fields ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Field:
    """A path resolved against the schema: an own column or a `data` path, and its kind."""

    path: str
    kind: str
    column: str = ""
    """The own column; empty for a `data` path."""
    segments: tuple[str, ...] = ()
    element: str = ""
    """For a list: its values' kind."""


@dataclass(frozen=True, slots=True)
class Hop:
    """A path through a reference: the reference field, and the field of the items it points
    to (resolved in their collections' schemas)."""

    reference: Field
    target: Field | Hop


Schemas = Mapping[str, dict[str, Any]]
"""Collection name -> schema: what references may lead into."""


def _kind(definition: dict[str, Any]) -> tuple[str, str]:
    """(kind, element kind) of a field definition."""
    field_type = definition["type"]
    multiple = bool(definition.get("multiple"))
    if field_type == "reference":
        return ("refs", "text") if multiple else ("ref", "")
    if field_type == "media":
        return ("list", "text") if multiple else ("text", "")
    if field_type in TEXT_TYPES:
        return "text", ""
    if field_type in ("date", "datetime"):
        return field_type, ""
    if field_type in ("number", "integer"):
        return "number", ""
    if field_type in ("boolean", "checkbox"):
        return "boolean", ""
    if field_type in ("select", "radio"):
        return _option_kind(definition), ""
    if field_type == "multiselect":
        return "list", _option_kind(definition)
    if field_type == "array":
        items = definition.get("items")
        element = _kind(items)[0] if items else ""
        if element in ("text", "number", "boolean", "date", "datetime"):
            return "list", element
        return "object", ""
    return "object", ""  # object and json: only whether they are set


def _option_kind(definition: dict[str, Any]) -> str:
    options = definition.get("options", definition.get("enum")) or []
    values = [o["value"] if isinstance(o, dict) and "value" in o else o for o in options]
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "number"
    return "text"


def resolve(
    path: str,
    schema: dict[str, Any] | None,
    schemas: Schemas,
    *,
    hops: int = 1,
    where: str = "",
) -> Field | Hop:
    """`path` as a field of items under `schema` (None: items of every collection, whose own
    fields alone are common to all); a 400 naming it (at `where`) if it is none."""
    where = where or path
    if path in OWN_FIELDS:
        return Field(path, OWN_FIELDS[path], column=path)
    head, _, rest = path.partition(".")
    if head != "data" or not rest:
        raise _invalid(
            where, "not a field: use an item field (" + ", ".join(OWN_FIELDS) + ") or data.<field>"
        )
    if schema is None:
        raise _invalid(
            where, "data fields differ per collection: query /api/collections/{name}/content"
        )
    segments = rest.split(".")
    properties = schema.get("properties", {})
    walked: list[str] = []
    for n, name in enumerate(segments):
        definition = properties.get(name)
        if definition is None:
            raise _invalid(where, f"no field {'.'.join([*walked, name])!r} in this collection")
        walked.append(name)
        kind, element = _kind(definition)
        left = segments[n + 1 :]
        field = Field(
            path if not left else "data." + ".".join(walked), kind, "", tuple(walked), element
        )
        if not left:
            return field
        if kind in ("ref", "refs") and hops > 0:
            if kind == "refs":
                raise _invalid(where, "a multiple reference is filtered with _some or _none")
            return Hop(field, _in_targets(where, ".".join(left), definition, schemas, hops - 1))
        if definition["type"] != "object" or "properties" not in definition:
            raise _invalid(where, f"{'.'.join(walked)!r} has no fields of its own")
        properties = definition["properties"]
    raise AssertionError("unreachable")


def _in_targets(
    path: str, rest: str, definition: dict[str, Any], schemas: Schemas, hops: int
) -> Field | Hop:
    """`rest` resolved in every collection the reference may point to, to one kind."""
    target_path = rest if rest in OWN_FIELDS or rest.startswith("data.") else f"data.{rest}"
    found: list[Field | Hop] = []
    for name in definition.get("collections", ()):
        if name in schemas:
            try:
                found.append(resolve(target_path, schemas[name], schemas, hops=hops))
            except InvalidArgument:
                continue
    if not found:
        raise _invalid(path, f"the items it points to have no field {rest!r}")
    kinds = {_leaf(f).kind for f in found}
    if len(kinds) > 1:
        raise _invalid(path, "the collections it points to give this field different types")
    return found[0]


def _leaf(field: Field | Hop) -> Field:
    while isinstance(field, Hop):
        field = field.target
    return field


# -- values ---------------------------------------------------------------------------------------
def typed(kind: str, raw: str, where: str, dialect: str) -> Any:
    """A canonical (string) value as the field's kind compares it."""
    if kind in ("text", "ref"):
        return raw
    if kind in ("number",):
        if not _NUMBER.fullmatch(raw.strip()):
            raise _invalid(where, f"expected a number, not {raw[:40]!r}")
        number = Decimal(raw.strip())
        if not number.is_finite():
            raise _invalid(where, "expected a finite number")
        return number if dialect == "postgresql" else float(number)
    if kind == "int":
        if not re.fullmatch(r"-?[0-9]{1,15}", raw.strip()):
            raise _invalid(where, f"expected an integer, not {raw[:40]!r}")
        return int(raw)
    if kind == "boolean":
        if raw in ("true", "1"):
            return True if dialect == "postgresql" else 1
        if raw in ("false", "0"):
            return False if dialect == "postgresql" else 0
        raise _invalid(where, "expected true or false")
    if kind == "ms":
        text = raw.strip()
        if re.fullmatch(r"-?[0-9]{1,15}", text):
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _invalid(where, "expected epoch milliseconds or an ISO 8601 datetime") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if kind in ("date", "datetime"):  # normalized as stored values are, so they compare
        problems: list[ErrorDetail] = []
        normalized = temporal(kind, raw.strip(), where, problems)
        if problems:
            raise InvalidArgument(f"{where}: {problems[0].message}", problems)
        return normalized
    raise _invalid(where, "this field is not compared with values")


# -- SQL ----------------------------------------------------------------------------------------
@dataclass
class Scope:
    """Which items a reader sees: all, or published ones and (if set) one author's others."""

    every: bool
    author: str | None = None


class Compiler:
    """Builds the SQL of one listing (one dialect, one schema, one reader)."""

    def __init__(
        self,
        items: FromClause,
        dialect: str,
        schema: dict[str, Any] | None,
        schemas: Schemas,
        scope: Scope,
    ) -> None:
        self.items = items
        self.dialect = dialect
        self.pg = dialect == "postgresql"
        self.schema = schema
        self.schemas = schemas
        self.scope = scope
        self._aliases = 0

    # expressions
    def json(self, table: FromClause, segments: Sequence[str]) -> ColumnElement[Any]:
        data = table.c.data
        if self.pg:
            return type_coerce(data.op("#>")(literal_column(_pg_path(segments))), JSONB)
        return func.json_extract(data, literal_column(_sqlite_path(segments)))

    def _json_type(self, table: FromClause, segments: Sequence[str]) -> ColumnElement[Any]:
        if self.pg:
            return func.jsonb_typeof(self.json(table, segments))
        return func.json_type(table.c.data, literal_column(_sqlite_path(segments)))

    def value(self, table: FromClause, field: Field) -> ColumnElement[Any]:
        """The field's value as SQL compares it (NULL when not set or not of its kind)."""
        if field.column:
            return table.c[field.column]
        segments = field.segments
        kind = field.kind
        if kind in ("text", "ref", "date", "datetime"):
            if self.pg:
                text = type_coerce(table.c.data.op("#>>")(literal_column(_pg_path(segments))), Text)
                return case((self._json_type(table, segments) == _lit("string"), text))
            return case(
                (self._json_type(table, segments) == _lit("text"), self.json(table, segments))
            )
        if kind == "number":
            if self.pg:
                raw = table.c.data.op("#>>")(literal_column(_pg_path(segments)))
                return case(
                    (self._json_type(table, segments) == _lit("number"), cast(raw, Numeric))
                )
            kind_sql = self._json_type(table, segments)
            return case(
                (
                    or_(kind_sql == _lit("integer"), kind_sql == _lit("real")),
                    self.json(table, segments),
                )
            )
        if kind == "boolean":
            if self.pg:
                raw = table.c.data.op("#>>")(literal_column(_pg_path(segments)))
                return case(
                    (self._json_type(table, segments) == _lit("boolean"), cast(raw, Boolean))
                )
            kind_sql = self._json_type(table, segments)
            return case((kind_sql == _lit("true"), 1), (kind_sql == _lit("false"), 0))
        return self.json(table, segments)

    def comparable(self, table: FromClause, field: Field) -> ColumnElement[Any]:
        expr = self.value(table, field)
        # Code-point order, as SQLite's; the id is left alone (its ASCII sorts the same in any
        # collation), so the (created_at, id) index keeps serving the default order.
        if self.pg and field.kind in ("text", "ref", "date", "datetime") and field.column != "id":
            return collate(expr, "C")
        return expr

    # filters
    def where(self, node: dict[str, Any] | None) -> ColumnElement[bool] | None:
        if node is None:
            return None
        return self._node(node, self.items, self.schema, "filter")

    def _node(
        self,
        node: dict[str, Any],
        table: FromClause,
        schema: dict[str, Any] | None,
        where: str,
    ) -> ColumnElement[bool]:
        if "and" in node:
            return and_(*(self._node(n, table, schema, where) for n in node["and"]))
        if "or" in node:
            return or_(*(self._node(n, table, schema, where) for n in node["or"]))
        if "not" in node:
            # NOT of "unknown" (a NULL comparison) would be unknown too: a not-set field would
            # then match neither a filter nor its negation.
            return not_(func.coalesce(self._node(node["not"], table, schema, where), false()))
        path, op = node["f"], node["op"]
        at = f"{where}.{path}"
        resolved = resolve(path, schema, self.schemas, where=at)
        return self._condition(resolved, op, node.get("v"), table, at)

    def _condition(
        self, field: Field | Hop, op: str, value: Any, table: FromClause, at: str
    ) -> ColumnElement[bool]:
        if isinstance(field, Hop):
            target_table = self._alias()
            inner = self._condition(field.target, op, value, target_table, at)
            return exists(
                select(literal_column("1"))
                .select_from(target_table)
                .where(
                    target_table.c.id == self.value(table, field.reference),
                    self._visible(target_table),
                    inner,
                )
            )
        allowed = KIND_OPERATORS[field.kind]
        if op not in allowed:
            raise _invalid(
                at,
                f"{op} does not fit a {field.kind} field; use one of {', '.join(sorted(allowed))}",
            )
        if op in _FLAGS:
            return self._flag(field, op, table)
        if op in _RELATION:
            return self._relation(field, op, value, table, at)
        if field.kind in ("list", "refs"):
            return self._list(field, op, value, table, at)
        return self._compare(field, op, value, table, at)

    def _compare(
        self, field: Field, op: str, value: Any, table: FromClause, at: str
    ) -> ColumnElement[bool]:
        expr = self.comparable(table, field)
        kind = "text" if field.kind == "ref" else field.kind
        if op in LIST_OPERATORS:
            values = [typed(kind, v, at, self.dialect) for v in value]
            if op == "_in":
                return expr.in_(values)
            if op == "_nin":
                return expr.not_in(values)
            # not BETWEEN: PostgreSQL refuses a COLLATE clause on its bounds
            between = and_(expr >= values[0], expr <= values[1])
            return between if op == "_between" else not_(between)
        bound = typed(kind, value, at, self.dialect)
        comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
            "_eq": lambda: expr == bound,
            "_neq": lambda: expr != bound,
            "_lt": lambda: expr < bound,
            "_lte": lambda: expr <= bound,
            "_gt": lambda: expr > bound,
            "_gte": lambda: expr >= bound,
        }
        if op in comparisons:
            return comparisons[op]()
        return self._text(self.value(table, field), op, bound)

    def _text(self, expr: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
        folded = op in ("_icontains", "_istarts_with", "_iends_with", "_like")
        if folded:
            expr, value = func.lower(expr), value.lower()
        if op == "_like":
            return expr.like(literal(value, Text), escape="\\")
        needle = literal(value, Text)
        if op in ("_contains", "_ncontains", "_icontains"):
            found = (func.strpos(expr, needle) if self.pg else func.instr(expr, needle)) > 0
            return and_(expr.is_not(None), not_(found)) if op == "_ncontains" else found
        length = func.length(needle)
        if op in ("_starts_with", "_istarts_with"):
            return func.substr(expr, 1, length) == needle
        # ends with: the last len(needle) characters (the empty string ends every text)
        start = func.length(expr) - length + 1
        return and_(
            expr.is_not(None),
            or_(length == 0, and_(start >= 1, func.substr(expr, start, length) == needle)),
        )

    def _flag(self, field: Field, op: str, table: FromClause) -> ColumnElement[bool]:
        null: ColumnElement[bool]
        empty: ColumnElement[bool]
        if field.column:
            expr = table.c[field.column]
            empty = or_(expr.is_(None), expr == "") if field.kind == "text" else expr.is_(None)
            null = expr.is_(None)
        else:
            kind_sql = self._json_type(table, field.segments)
            null = or_(kind_sql.is_(None), kind_sql == _lit("null"))
            raw = self.json(table, field.segments)
            if self.pg:
                empty = or_(null, raw.in_([_jsonb('""'), _jsonb("[]"), _jsonb("{}")]))
            else:
                empty = or_(
                    null,
                    and_(kind_sql == _lit("text"), raw == _lit("")),
                    and_(kind_sql == _lit("array"), raw == _lit("[]")),
                    and_(kind_sql == _lit("object"), raw == _lit("{}")),
                )
        if op == "_null":
            return null
        if op == "_nnull":
            return not_(null)
        if op == "_empty":
            return empty
        return not_(empty)

    def _list(
        self, field: Field, op: str, value: Any, table: FromClause, at: str
    ) -> ColumnElement[bool]:
        kind = "text" if field.kind == "refs" else field.element
        values = value if isinstance(value, list) else [value]
        typed_values = [typed(kind, v, at, self.dialect) for v in values]
        holds = [self._holds(table, field, kind, v) for v in typed_values]
        if op == "_contains":
            return holds[0]
        if op == "_ncontains":
            present = self._json_type(table, field.segments) == _lit("array")
            return and_(present, not_(holds[0]))
        if op == "_in":
            return or_(*holds)
        return and_(*holds)  # _all

    def _holds(self, table: FromClause, field: Field, kind: str, value: Any) -> ColumnElement[bool]:
        """The list holds `value` (of its values' kind)."""
        if self.pg:
            element = value if not isinstance(value, Decimal) else _decimal_json(value)
            document = orjson.dumps([element]).decode()
            return self.json(table, field.segments).op("@>")(cast(literal(document, Text), JSONB))
        each = func.json_each(table.c.data, literal_column(_sqlite_path(field.segments)))
        values = each.table_valued("value", "type")
        types = {
            "text": ["text"],
            "date": ["text"],
            "datetime": ["text"],
            "number": ["integer", "real"],
            "boolean": ["true", "false"],
        }[kind]
        return exists(
            select(literal_column("1"))
            .select_from(values)
            .where(values.c.value == value, values.c.type.in_([_lit(t) for t in types]))
        )

    def _relation(
        self, field: Field, op: str, node: dict[str, Any], table: FromClause, at: str
    ) -> ColumnElement[bool]:
        """`_some`/`_none`: one / no item the reference points to matches `node`."""
        definition = self._definition(field)
        target = self._alias()
        schemas = [self.schemas[n] for n in definition.get("collections", ()) if n in self.schemas]
        conditions = [self._visible(target)]
        if field.kind == "ref":
            conditions.append(target.c.id == self.value(table, field))
        else:
            ids = self._id_list(table, field)
            conditions.append(target.c.id.in_(ids))
        inner = self._in_schemas(node, target, schemas, at)
        matched = exists(select(literal_column("1")).select_from(target).where(*conditions, inner))
        return matched if op == "_some" else not_(matched)

    def _in_schemas(
        self, node: dict[str, Any], table: FromClause, schemas: list[dict[str, Any]], at: str
    ) -> ColumnElement[bool]:
        """`node` over items of one of several collections: fields resolved in the first that
        has them all (they are checked in every one)."""
        problems: InvalidArgument | None = None
        for schema in schemas:
            try:
                saved, self.schemas = self.schemas, {}  # no second hop from inside a relation
                try:
                    return self._node(node, table, schema, at)
                finally:
                    self.schemas = saved
            except InvalidArgument as exc:
                problems = exc
        raise problems or _invalid(at, "the reference points to no collection")

    def _id_list(self, table: FromClause, field: Field) -> Any:
        """The ids a multiple reference holds, as a subquery correlated to `table`."""
        data = table.c.data
        if self.pg:
            ids = func.jsonb_array_elements_text(
                type_coerce(data.op("#>")(literal_column(_pg_path(field.segments))), JSONB)
            ).table_valued("value")
        else:
            ids = func.json_each(data, literal_column(_sqlite_path(field.segments))).table_valued(
                "value"
            )
        return select(ids.c.value).correlate(table)

    def _definition(self, field: Field) -> dict[str, Any]:
        assert self.schema is not None
        definition: dict[str, Any] = {"properties": self.schema.get("properties", {})}
        for name in field.segments:
            definition = definition["properties"][name]
        return definition

    def _alias(self) -> FromClause:
        self._aliases += 1
        return self.items.alias(f"target_{self._aliases}")

    def _visible(self, table: FromClause) -> ColumnElement[bool]:
        if self.scope.every:
            return true()
        published = table.c.status == "published"
        if self.scope.author is None:
            return published
        return or_(published, table.c.author_id == self.scope.author)

    # order
    def order(self, sort: Sequence[str], rank: ColumnElement[Any] | None = None) -> list[SortKey]:
        """The sort keys, the id last; without a sort, best `rank` first if one is given (a
        search's), then newest first."""
        keys = []
        if rank is not None and not sort:
            keys.append(SortKey(Field("rank", "number", column="rank"), True, rank))
        for key in sort or DEFAULT_SORT:
            path = key.removeprefix("-")
            at = f"sort.{path}"
            resolved = resolve(path, self.schema, self.schemas, hops=0, where=at)
            assert isinstance(resolved, Field)
            if resolved.kind not in _SORTABLE:
                raise _invalid(at, f"a {resolved.kind} field cannot be sorted on")
            keys.append(
                SortKey(resolved, key.startswith("-"), self.comparable(self.items, resolved))
            )
        if not any(k.field.column == "id" for k in keys):
            id_field = Field("id", "text", column="id")
            keys.append(
                SortKey(id_field, keys[-1].descending, self.comparable(self.items, id_field))
            )
        return keys

    def order_by(self, keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
        """ORDER BY terms: a not-set value sorts as larger than any (PostgreSQL's default, so
        a plain index serves either direction)."""
        terms: list[ColumnElement[Any]] = []
        for key in keys:
            term = key.expr.desc() if key.descending else key.expr.asc()
            if key.nullable and not self.pg:
                term = term.nulls_first() if key.descending else term.nulls_last()
            terms.append(term)
        return terms

    def after(self, keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows after the one whose sort values are `values`."""
        branches = []
        # Bound as parameters of their own type (SQLAlchemy takes a bare True for `IS true`).
        values = [None if v is None else literal(v) for v in values]
        for n, key in enumerate(keys):
            value, expr = values[n], key.expr
            before = [
                keys[m].expr.is_(None) if values[m] is None else keys[m].expr == values[m]
                for m in range(n)
            ]
            if value is None:  # not set is the largest: only set values follow it, descending
                if key.descending:
                    branches.append(and_(*before, expr.is_not(None)))
                continue
            beyond = expr < value if key.descending else or_(expr > value, expr.is_(None))
            branches.append(and_(*before, beyond))
        return or_(*branches) if branches else false()


@dataclass(frozen=True, slots=True)
class SortKey:
    field: Field
    descending: bool
    expr: ColumnElement[Any]

    @property
    def nullable(self) -> bool:
        return not self.field.column or self.field.column == "published_at"


def _lit(text: str) -> ColumnElement[Any]:
    """A constant string as SQL text: part of an expression an index can match."""
    return literal_column(f"'{text}'")


def _jsonb(text: str) -> ColumnElement[Any]:
    return literal_column(f"'{text}'::jsonb")


def _pg_path(segments: Sequence[str]) -> str:
    return "'{" + ",".join(segments) + "}'"


def _sqlite_path(segments: Sequence[str]) -> str:
    return "'$." + ".".join(segments) + "'"


def _decimal_json(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# -- cursors ------------------------------------------------------------------------------------
def fingerprint(*parts: Any) -> str:
    """What a cursor is valid for: the listing's collection, status, filter and sort."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def encode_cursor(
    query_id: str, values: Sequence[Any], window: tuple[int, str] | None = None
) -> str:
    """A cursor after the row whose sort values are `values`; `window` is a ranked search's
    (heron_content.search.Window), kept so that every page ranks the same items."""
    keys = [None if v is None else _cursor_text(v) for v in values]
    doc: dict[str, Any] = {"q": query_id, "k": keys}
    if window is not None:
        doc["w"] = list(window)
    raw = orjson.dumps(doc)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0"
    return str(value)


def decode_cursor(
    cursor: str, query_id: str, keys: Sequence[SortKey], dialect: str
) -> tuple[list[Any], tuple[int, str] | None]:
    """The sort values a cursor holds, typed, and its search window if it has one; a 400 for
    one that is not this query's."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        ok = isinstance(doc, dict) and isinstance(doc.get("k"), list)
    except (ValueError, orjson.JSONDecodeError, UnicodeEncodeError):
        ok = False
    if not ok:
        raise _invalid("cursor", "not a cursor this service gave out; start from the first page")
    if doc.get("q") != query_id or len(doc["k"]) != len(keys):
        raise _invalid(
            "cursor",
            "belongs to another query (filter, sort, status or collection); a cursor only "
            "continues the listing that gave it",
        )
    values: list[Any] = []
    for raw, key in zip(doc["k"], keys, strict=True):
        field = key.field
        if raw is None:
            values.append(None)
        elif not isinstance(raw, str):
            raise _invalid("cursor", "is damaged")
        else:
            kind = "text" if field.kind == "ref" else field.kind
            try:
                values.append(typed(kind, raw, "cursor", dialect))
            except InvalidArgument:
                raise _invalid("cursor", "is damaged") from None
    window = doc.get("w")
    if window is None:
        return values, None
    if not (
        isinstance(window, list)
        and len(window) == 2
        and type(window[0]) is int
        and isinstance(window[1], str)
    ):
        raise _invalid("cursor", "is damaged")
    return values, (window[0], window[1])


# -- projection -----------------------------------------------------------------------------------
def check_fields(fields: Sequence[str], schema: dict[str, Any] | None, schemas: Schemas) -> None:
    for path in fields:
        resolve(path, schema, schemas, hops=0, where=f"fields.{path}")


def project(data: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The parts of `data` that `data.<path>` fields name."""
    out: dict[str, Any] = {}
    for path in fields:
        if not path.startswith("data."):
            continue
        segments = path.split(".")[1:]
        source: Any = data
        for name in segments:
            source = source.get(name) if isinstance(source, dict) else None
        if source is None:
            continue
        target = out
        for name in segments[:-1]:
            target = target.setdefault(name, {})
        target[segments[-1]] = source
    return out
