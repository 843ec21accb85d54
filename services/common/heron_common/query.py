"""The list query language's three spellings, and the one canonical form they all become.

A list route takes a filter as JSON (`filter={"data.price":{"_gte":10}}`), as brackets
(`filter[data.price][_gte]=10`) or in SonicJS's words
(`where={"and":[{"field":"data.price","operator":"greater_than_equal","value":10}]}`), and sort,
fields, search, include and meta parameters. The gateway turns them into a `ListQuery` here,
without knowing any collection's schema; the content service then checks every field and value
against the schema (heron_content.query) and compiles it to SQL. Two spellings of one query
give equal `ListQuery`s, so they share one response-cache entry (`ListQuery.key`).

The canonical filter is a tree of plain JSON:
- `{"and": [node, ...]}`, `{"or": [node, ...]}`, `{"not": node}`;
- `{"f": "data.price", "op": "_gte", "v": "10"}`: a condition. Values are strings (a JSON
  number `10` and the bracket value `10` are both `"10"`, typed later by the field), lists of
  strings for the list operators, nothing for the flag operators (`_null`, `_nempty`, ...);
- `{"f": "data.tags", "op": "_some", "v": node}`: a condition on the items a reference points to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from heron_common.errors import ErrorDetail, InvalidArgument

# Canonical operators (Directus's names).
SCALAR_OPERATORS = frozenset(
    {"_eq", "_neq", "_lt", "_lte", "_gt", "_gte"}
    | {"_contains", "_ncontains", "_icontains", "_like"}
    | {"_starts_with", "_istarts_with", "_ends_with", "_iends_with"}
)
LIST_OPERATORS = frozenset({"_in", "_nin", "_all", "_between", "_nbetween"})
FLAG_OPERATORS = frozenset({"_null", "_nnull", "_empty", "_nempty"})
RELATION_OPERATORS = frozenset({"_some", "_none"})
OPERATORS = SCALAR_OPERATORS | LIST_OPERATORS | FLAG_OPERATORS | RELATION_OPERATORS
_NEGATED_FLAG = {"_null": "_nnull", "_nnull": "_null", "_empty": "_nempty", "_nempty": "_empty"}

# SonicJS's `where` operators, as canonical ones (`exists` is `_nnull`, or `_null` if false).
SONIC_OPERATORS = {
    "equals": "_eq",
    "not_equals": "_neq",
    "greater_than": "_gt",
    "greater_than_equal": "_gte",
    "less_than": "_lt",
    "less_than_equal": "_lte",
    "like": "_like",
    "contains": "_contains",
    "in": "_in",
    "not_in": "_nin",
    "all": "_all",
    "exists": "_nnull",
    "starts_with": "_starts_with",
    "ends_with": "_ends_with",
}

MAX_DEPTH = 6
"""How deep `_and`/`_or`/`_not`/`_some` may nest."""
MAX_CONDITIONS = 40
MAX_LIST_VALUES = 100
MAX_VALUE_LENGTH = 500
MAX_SORT_KEYS = 5
MAX_FIELDS = 50
MAX_INCLUDES = 10
MAX_SEARCH_LENGTH = 200
MAX_PARAMETER_LENGTH = 8000
MAX_PATH_LENGTH = 200
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
META_TOTAL = frozenset({"total", "total_count", "filter_count", "*"})
QUERY_PARAMETERS = frozenset({"filter", "where", "sort", "fields", "search", "include", "meta"})


def _invalid(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}", [ErrorDetail(where, message)])


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a list request asks beyond its page: filter, sort, projection, search, includes."""

    filter: dict[str, Any] | None = None
    sort: tuple[str, ...] = ()
    """Field paths, `-` first for descending."""
    fields: tuple[str, ...] = ()
    search: str = ""
    include: tuple[str, ...] = ()
    total: bool = False
    """Count every match (`meta=total`)."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.filter is not None:
            out["filter"] = self.filter
        for name in ("sort", "fields", "include"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.search:
            out["search"] = self.search
        if self.total:
            out["total"] = True
        return out

    def to_bytes(self) -> bytes:
        """Canonical JSON (keys sorted): equal queries give equal bytes."""
        return orjson.dumps(self.as_json(), option=orjson.OPT_SORT_KEYS) if self else b""

    def __bool__(self) -> bool:
        return bool(
            self.filter or self.sort or self.fields or self.search or self.include or self.total
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ListQuery:
        """The query a gateway sent (already canonical; checked again, as any input is)."""
        if not raw:
            return cls()
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _invalid("query", "is not JSON") from None
        if not isinstance(doc, dict):
            raise _invalid("query", "expected an object")
        builder = _Builder()
        node = builder.node(doc["filter"], "filter", 0) if doc.get("filter") else None
        return cls(
            filter=node,
            sort=_sort_keys(doc.get("sort", []), "sort"),
            fields=_paths(doc.get("fields", []), "fields", MAX_FIELDS),
            search=_search(doc.get("search", "")),
            include=_paths(doc.get("include", []), "include", MAX_INCLUDES),
            total=doc.get("total") is True,
        )


def parse_list_query(params: Iterable[tuple[str, str]]) -> ListQuery:
    """A list request's query parameters (all of them, repeated ones included) as one query.
    Parameters that are not the query language's are ignored (the route has its own)."""
    filters: list[dict[str, Any]] = []
    brackets: dict[str, Any] = {}
    single: dict[str, str] = {}
    builder = _Builder()
    for name, value in params:
        if len(value) > MAX_PARAMETER_LENGTH:
            raise _invalid(name[:50], f"at most {MAX_PARAMETER_LENGTH} characters")
        if name.startswith("filter["):
            _put_bracket(brackets, name, value)
        elif name in QUERY_PARAMETERS:
            if name in single:
                raise _invalid(name, "give it once")
            single[name] = value
    if "filter" in single and single["filter"].strip():
        filters.append(builder.node(_json(single["filter"], "filter"), "filter", 0))
    if brackets:
        filters.append(builder.node(brackets, "filter", 0))
    if "where" in single and single["where"].strip():
        filters.append(builder.where(_json(single["where"], "where"), "where", 0))
    node = filters[0] if len(filters) == 1 else _combine("and", filters) if filters else None
    return ListQuery(
        filter=node,
        sort=_sort(single.get("sort", "")),
        fields=_paths(_split(single.get("fields", "")), "fields", MAX_FIELDS),
        search=_search(single.get("search", "")),
        include=_paths(_split(single.get("include", "")), "include", MAX_INCLUDES),
        total=_meta(single.get("meta", "")),
    )


def _json(text: str, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _invalid(where, "is not valid JSON") from None


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _put_bracket(tree: dict[str, Any], name: str, value: str) -> None:
    """`filter[a][b]=v` into `tree` as {"a": {"b": v}}; `filter[a][_in][]=v` (or a repeated
    parameter) collects a list."""
    rest = name[len("filter") :]
    segments = _BRACKETS.findall(rest)
    if not segments or "".join(f"[{s}]" for s in segments) != rest:
        raise _invalid(name[:100], "expected filter[field][_operator]=value")
    appended = segments[-1] == ""
    if appended:
        segments = segments[:-1]
    if not segments or "" in segments:
        raise _invalid(name[:100], "[] only ends a list value, e.g. filter[f][_in][]=a")
    node = tree
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise _invalid(name[:100], "a filter parameter conflicts with another")
        node = child
    last, existing = segments[-1], node.get(segments[-1])
    if isinstance(existing, dict):
        raise _invalid(name[:100], "a filter parameter conflicts with another")
    if existing is None:
        node[last] = [value] if appended else value
    else:  # repeated: a list of the values
        node[last] = [*(existing if isinstance(existing, list) else [existing]), value]


def _combine(kind: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """`and`/`or` of nodes, flattened (an `and` inside an `and` is one `and`)."""
    flat: list[dict[str, Any]] = []
    for node in nodes:
        flat.extend(node[kind] if kind in node else [node])
    return flat[0] if len(flat) == 1 else {kind: flat}


@dataclass
class _Builder:
    conditions: int = 0

    def _count(self, where: str) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _invalid(where, f"at most {MAX_CONDITIONS} conditions in one query")

    def node(self, raw: Any, where: str, depth: int, prefix: str = "") -> dict[str, Any]:
        """Directus's form (also the brackets' and the canonical one's) as a canonical node."""
        if depth > MAX_DEPTH:
            raise _invalid(where, f"filters nest at most {MAX_DEPTH} levels deep")
        if isinstance(raw, dict) and "f" in raw and "op" in raw and not prefix:
            return self._canonical_condition(raw, where, depth)
        if not isinstance(raw, dict) or not raw:
            raise _invalid(where, 'expected an object such as {"title": {"_eq": "Hello"}}')
        parts: list[dict[str, Any]] = []
        for key, value in raw.items():
            if not isinstance(key, str):
                raise _invalid(where, "keys are field paths or operators")
            at = f"{where}.{key}"[:MAX_PATH_LENGTH]
            if key in ("_and", "_or", "and", "or") and not prefix:
                kind = key.lstrip("_")
                children = _listed(value, at)
                if not children:
                    raise _invalid(at, "expected a non-empty list of filters")
                nodes = [self.node(c, f"{at}.{n}", depth + 1) for n, c in enumerate(children)]
                parts.append(_combine(kind, nodes))
            elif key in ("_not", "not") and not prefix:
                parts.append({"not": self.node(value, at, depth + 1)})
            elif key.startswith("_"):
                if not prefix:
                    raise _invalid(at, "an operator follows a field, e.g. {field: {op: value}}")
                parts.append(self._condition(prefix, key, value, at, depth))
            else:
                path = f"{prefix}.{key}" if prefix else key
                if isinstance(value, dict):
                    parts.append(self.node(value, at, depth, prefix=path))
                else:  # {"title": "Hello"}: equality
                    parts.append(self._condition(path, "_eq", value, at, depth))
        return _combine("and", parts)

    def _canonical_condition(self, raw: dict[str, Any], where: str, depth: int) -> dict[str, Any]:
        if set(raw) - {"f", "op", "v"} or not isinstance(raw["f"], str):
            raise _invalid(where, "a condition is {f, op, v}")
        return self._condition(raw["f"], raw["op"], raw.get("v", True), where, depth)

    def _condition(self, path: str, op: Any, value: Any, where: str, depth: int) -> dict[str, Any]:
        self._count(where)
        _check_path(path, where)
        if not isinstance(op, str) or op not in OPERATORS:
            raise _invalid(where, f"unknown operator {str(op)[:40]!r}; one of: {_OPERATOR_LIST}")
        if op in RELATION_OPERATORS:
            return {"f": path, "op": op, "v": self.node(value, where, depth + 1)}
        if op in FLAG_OPERATORS:
            flag = _flag(value, where)
            return {"f": path, "op": op if flag else _NEGATED_FLAG[op]}
        if op in LIST_OPERATORS:
            values = _listed(value, where)
            if isinstance(value, str):
                values = _split(value)
            if not values or len(values) > MAX_LIST_VALUES:
                raise _invalid(where, f"expected 1 to {MAX_LIST_VALUES} values")
            if op in ("_between", "_nbetween") and len(values) != 2:
                raise _invalid(where, "expected two values: from, to")
            return {"f": path, "op": op, "v": [_scalar(v, where) for v in values]}
        if value is None:
            if op in ("_eq", "_neq"):  # {"_eq": null}: is not set
                return {"f": path, "op": "_null" if op == "_eq" else "_nnull"}
            raise _invalid(where, "expected a value")
        return {"f": path, "op": op, "v": _scalar(value, where)}

    def where(self, raw: Any, where: str, depth: int) -> dict[str, Any]:
        """SonicJS's `where`: {"and": [conditions], "or": [conditions]} (both: both hold)."""
        if depth > MAX_DEPTH:
            raise _invalid(where, f"filters nest at most {MAX_DEPTH} levels deep")
        if not isinstance(raw, dict) or not raw or set(raw) - {"and", "or"}:
            raise _invalid(where, 'expected {"and": [...]} and/or {"or": [...]}')
        groups: list[dict[str, Any]] = []
        for kind in ("and", "or"):
            if kind not in raw:
                continue
            conditions = raw[kind]
            if not isinstance(conditions, list) or not conditions:
                raise _invalid(f"{where}.{kind}", "expected a non-empty list of conditions")
            nodes = [
                self._sonic(c, f"{where}.{kind}.{n}", depth + 1) for n, c in enumerate(conditions)
            ]
            groups.append(_combine(kind, nodes))
        return _combine("and", groups)

    def _sonic(self, raw: Any, where: str, depth: int) -> dict[str, Any]:
        if isinstance(raw, dict) and set(raw) <= {"and", "or"}:
            return self.where(raw, where, depth)
        if not isinstance(raw, dict) or set(raw) - {"field", "operator", "value"}:
            raise _invalid(where, "expected {field, operator, value}")
        name, operator = raw.get("field"), raw.get("operator")
        if not isinstance(name, str):
            raise _invalid(f"{where}.field", "expected a field path")
        if not isinstance(operator, str) or operator not in SONIC_OPERATORS:
            known = ", ".join(SONIC_OPERATORS)
            raise _invalid(f"{where}.operator", f"unknown operator; one of: {known}")
        value = raw.get("value")
        if operator == "exists":
            return self._condition(name, "_nnull", _flag(value, where), where, depth)
        return self._condition(name, SONIC_OPERATORS[operator], value, where, depth)


_OPERATOR_LIST = ", ".join(sorted(OPERATORS | {"_and", "_or", "_not"}))


def _listed(value: Any, where: str) -> list[Any]:
    """A list value, also as brackets give it: {"0": a, "1": b} or a comma-separated string."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    if isinstance(value, str):
        return [value]
    raise _invalid(where, "expected a list")


def _flag(value: Any, where: str) -> bool:
    if value in (True, "true", "1", 1, "", None):
        return True
    if value in (False, "false", "0", 0):
        return False
    raise _invalid(where, "expected true or false")


def _scalar(value: Any, where: str) -> str:
    """A condition's value as the string every spelling gives (typed later, by the field)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = orjson.dumps(value).decode()
    elif isinstance(value, str):
        text = value
    else:
        raise _invalid(where, "expected a string, a number or a boolean")
    if len(text) > MAX_VALUE_LENGTH:
        raise _invalid(where, f"values are at most {MAX_VALUE_LENGTH} characters")
    return text


def _check_path(path: str, where: str) -> None:
    if len(path) > MAX_PATH_LENGTH or not _PATH.fullmatch(path):
        raise _invalid(where, "a field is a path such as title or data.price")


def _paths(values: Sequence[Any], where: str, limit: int) -> tuple[str, ...]:
    if not isinstance(values, list | tuple) or len(values) > limit:
        raise _invalid(where, f"at most {limit} fields")
    for value in values:
        if not isinstance(value, str):
            raise _invalid(where, "expected field paths")
        _check_path(value, where)
    return tuple(sorted(set(values)))


def _sort(text: str) -> tuple[str, ...]:
    text = text.strip()
    if not text:
        return ()
    if text.startswith(("[", "{")):  # SonicJS: [{"field": "created_at", "order": "desc"}]
        raw = _json(text, "sort")
        entries = raw if isinstance(raw, list) else [raw]
        keys = []
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
                raise _invalid(f"sort.{n}", 'expected {"field": ..., "order": "asc" or "desc"}')
            order = str(entry.get("order", "asc")).lower()
            if order not in ("asc", "desc"):
                raise _invalid(f"sort.{n}.order", "expected asc or desc")
            keys.append(("-" if order == "desc" else "") + entry["field"])
        return _sort_keys(keys, "sort")
    return _sort_keys(_split(text), "sort")


def _sort_keys(keys: Sequence[Any], where: str) -> tuple[str, ...]:
    if not isinstance(keys, list | tuple) or len(keys) > MAX_SORT_KEYS:
        raise _invalid(where, f"at most {MAX_SORT_KEYS} sort fields")
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, str):
            raise _invalid(where, "expected field paths")
        path = key.removeprefix("-")
        _check_path(path, where)
        if path in seen:
            raise _invalid(where, f"{path} is sorted on twice")
        seen.add(path)
    return tuple(keys)


def _search(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _invalid("search", "expected text")
    text = " ".join(raw.split())
    if len(text) > MAX_SEARCH_LENGTH:
        raise _invalid("search", f"at most {MAX_SEARCH_LENGTH} characters")
    return text


def _meta(text: str) -> bool:
    wanted = set(_split(text))
    unknown = wanted - META_TOTAL
    if unknown:
        raise _invalid("meta", "only total (or total_count, filter_count, *) is supported")
    return bool(wanted)
