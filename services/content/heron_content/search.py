"""Full-text search over an item's title and text fields (`search=`).

Each item keeps `search_text`: its title and the values of its text fields (string, text,
textarea, markdown, and rich text without its markup; nested objects and lists of strings
included), rebuilt on every write. PostgreSQL keeps `to_tsvector('simple', search_text)` as a
stored generated column with a GIN index (migrations 0007, 0010), SQLite an FTS5 table kept in
step by triggers (0007). Both take the words of the query, all of which must occur (in any order,
any case), and rank matches: `ts_rank` on PostgreSQL, BM25 on SQLite. The `simple`
configuration (no stemming, no stop words) treats every language alike.
"""

from __future__ import annotations

import html
import re
from typing import Any

import nh3
from heron_common.errors import ErrorDetail, InvalidArgument
from sqlalchemy import Numeric, bindparam, cast, func, literal_column, select, table
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, Select

MAX_SEARCH_TEXT = 100_000
_TEXT_TYPES = frozenset({"string", "text", "textarea", "markdown", "richtext"})
_WORDS = re.compile(r"\w+")
_FTS = table("items_fts")
_SIMPLE: ColumnElement[Any] = literal_column("'simple'")


def search_text(schema: dict[str, Any], title: str, data: dict[str, Any]) -> str:
    """What search looks in: the title and the text fields' values."""
    parts = [title]
    _collect(schema.get("properties", {}), data, parts)
    return " ".join(p for p in parts if p)[:MAX_SEARCH_TEXT]


def _collect(properties: dict[str, Any], data: Any, parts: list[str]) -> None:
    if not isinstance(data, dict):
        return
    for name, definition in properties.items():
        value = data.get(name)
        if value is None:
            continue
        field_type = definition["type"]
        if field_type in _TEXT_TYPES and isinstance(value, str):
            parts.append(_plain(value) if field_type == "richtext" else value)
        elif field_type == "object":
            _collect(definition.get("properties", {}), value, parts)
        elif field_type == "array" and isinstance(value, list):
            items = definition.get("items") or {}
            if items.get("type") in _TEXT_TYPES:
                parts.extend(v for v in value if isinstance(v, str))


def _plain(markup: str) -> str:
    """Rich text's words without its tags."""
    return html.unescape(nh3.clean(markup, tags=set()))


def words(query: str) -> list[str]:
    found = _WORDS.findall(query.lower())
    if not found:
        raise InvalidArgument(
            "search: give at least one word",
            [ErrorDetail("search", "no letters or digits to search for")],
        )
    return found


def condition(dialect: str, items: FromClause, query: str) -> ColumnElement[bool]:
    """Items whose search text holds every word of `query`."""
    terms = words(query)
    if dialect == "postgresql":
        return _vector(items).op("@@")(_tsquery(terms))
    matched: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(_FTS)
        .where(literal_column("items_fts").op("MATCH")(bindparam("fts_query", _fts(terms))))
    )
    return literal_column("items.rowid").in_(matched)


def rank(dialect: str, items: FromClause, query: str) -> ColumnElement[Any]:
    """How well an item matches (higher is better; exact, so a cursor can hold it)."""
    terms = words(query)
    if dialect == "postgresql":
        return cast(func.ts_rank(_vector(items), _tsquery(terms)), Numeric)
    score = (
        select(-func.bm25(literal_column("items_fts")))
        .select_from(_FTS)
        .where(
            literal_column("items_fts").op("MATCH")(bindparam("fts_rank_query", _fts(terms))),
            literal_column("items_fts.rowid") == literal_column("items.rowid"),
        )
        .scalar_subquery()
    )
    return score


def _vector(items: FromClause) -> ColumnElement[Any]:
    """The stored `to_tsvector('simple', search_text)` (a generated column, migration 0010),
    of the listing's own `items` (as SQLite's `items.rowid`)."""
    return literal_column("items.search_vector")


def _tsquery(terms: list[str]) -> ColumnElement[Any]:
    return func.plainto_tsquery(_SIMPLE, bindparam("ts_query", " ".join(terms)))


def _fts(terms: list[str]) -> str:
    """FTS5's query syntax, from words only: each one quoted, all of them required."""
    return " ".join(f'"{t}"' for t in terms)
