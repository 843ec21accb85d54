"""Full-text search over an item's title and text fields (`search=`).

Each item keeps `search_text`: its title and the values of its text fields (string, text,
textarea, markdown, and rich text without its markup; nested objects and lists of strings
included), rebuilt on every write. PostgreSQL keeps `to_tsvector('simple', search_text)` as a
stored generated column with a GIN index (migrations 0007, 0010), SQLite an FTS5 table kept in
step by triggers (0007). Both take the words of the query, all of which must occur (in any order,
any case), and rank matches by what each item says alone: `ts_rank` on PostgreSQL, and on SQLite
`heron_rank`, each word's count with diminishing returns. (FTS5's BM25 would also weigh the
whole collection, so every insert would move every score and a cursor would lose its place.)
The `simple` configuration (no stemming, no stop words) treats every language alike.

Ranking is bounded. A word found in most of 100,000 items would have every one of them scored
for each page (a quarter of a second on PostgreSQL), so a ranked search scores its `window`
newest matches (HERON_CONTENT_SEARCH_RANK_WINDOW): those come first, best first, and any older
matches follow them, newest first. The window's oldest member (its bound) is found by walking
the newest-first index, and a cursor keeps it, so every page of a walk ranks the same items.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import nh3
from heron_common.db import sqlite_function
from heron_common.errors import ErrorDetail, InvalidArgument
from sqlalchemy import (
    BigInteger,
    Numeric,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
)
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
    folded = _fold(" ".join(terms))  # once per query, not once per row
    return func.heron_rank(literal_column("items.search_text"), bindparam("rank_terms", folded))


EVERYTHING = (-1, "")
"""The bound of a window that holds every match (there are no more of them than its size)."""

UNRANKED = -1
"""The rank of a match outside the window: below any real rank (both are never negative)."""


@dataclass(frozen=True, slots=True)
class Window:
    """The newest `size` matches of a ranked search, the only ones it scores.

    `member` and `rank` (the score inside the window, UNRANKED outside) read the bound from
    the parameters `search_window_at` and `search_window_id`: the created_at and id of the
    window's oldest member. `bound` is a cursor's (None on a first page: the store finds it).
    """

    size: int
    match: ColumnElement[bool]
    """The search's condition (the listing's filter is apart from it)."""
    member: ColumnElement[bool]
    rank: ColumnElement[Any]
    bound: tuple[int, str] | None = None

    @property
    def match_in_window(self) -> ColumnElement[bool]:
        """The match as the window's members are checked: row by row along the newest-first
        index. PostgreSQL would otherwise AND the full-text index's bitmap of every match
        (most of the collection, for a common word) with the window's range."""
        return case((self.match, literal(True)), else_=literal(False))

    def parameters(self, bound: tuple[int, str]) -> dict[str, Any]:
        return {"search_window_at": bound[0], "search_window_id": bound[1]}


def window(dialect: str, items: FromClause, query: str, size: int) -> Window:
    """A ranked search's window over the listing's `items`."""
    at = bindparam("search_window_at", type_=BigInteger)
    last_id = bindparam("search_window_id", type_=String)
    created_at, item_id = items.c.created_at, items.c.id
    member = or_(created_at > at, and_(created_at == at, item_id >= last_id))
    scored = case((member, rank(dialect, items, query)), else_=literal(UNRANKED))
    return Window(size, condition(dialect, items, query), member, scored)


def _vector(items: FromClause) -> ColumnElement[Any]:
    """The stored `to_tsvector('simple', search_text)` (a generated column, migration 0010),
    of the listing's own `items` (as SQLite's `items.rowid`)."""
    return literal_column("items.search_vector")


def _tsquery(terms: list[str]) -> ColumnElement[Any]:
    return func.plainto_tsquery(_SIMPLE, bindparam("ts_query", " ".join(terms)))


def _fold(text: str) -> str:
    """Lowercase without accents, as FTS5's tokenizer compares words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _score(text: str | None, folded_words: str) -> float:
    """SQLite's `heron_rank(search_text, words)`: each word's count, saturating (k = 1.2);
    the words come folded already."""
    if not text:
        return 0.0
    counts = Counter(_WORDS.findall(_fold(text)))
    return sum(n / (n + 1.2) for n in (counts[word] for word in folded_words.split()))


sqlite_function("heron_rank", 2, _score)


def _fts(terms: list[str]) -> str:
    """FTS5's query syntax, from words only: each one quoted, all of them required."""
    return " ".join(f'"{t}"' for t in terms)
