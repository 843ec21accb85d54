"""The list query language through the gateway, on SQLite and PostgreSQL: three filter
spellings with one answer, operators per field type, relations, sort, projection, totals and
cursors, and a clear 400 for what does not fit the schema. (The differential sweep against a
plain-Python evaluator is tests/e2e/test_query_differential.py.)"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SEARCH_WINDOW, Stack, content_sql
from tests.e2e.test_content_api import assert_error, unique

NO_CACHE = {"cache-control": "no-cache"}


@dataclass
class Catalog:
    authors: str
    posts: str
    author_ids: dict[str, str]
    """name -> id"""
    posts_by_title: dict[str, dict[str, Any]]

    @property
    def url(self) -> str:
        return f"/api/collections/{self.posts}/content"


AUTHORS = [("Ada", "uk", "published"), ("Grace", "us", "published"), ("Hidden", "fr", "draft")]
POSTS: list[tuple[str, str, dict[str, Any]]] = [
    # title, status, data (the author by name)
    (
        "Alpha",
        "published",
        {
            "price": 10,
            "tags": ["a", "b"],
            "kind": "news",
            "author": "Ada",
            "featured": True,
            "at": "2024-01-01T00:00:00Z",
            "seo": {"title": "alpha seo"},
            "body": "Hello World",
        },
    ),
    (
        "Beta",
        "published",
        {
            "price": 25.5,
            "tags": ["b"],
            "kind": "essay",
            "author": "Grace",
            "featured": False,
            "at": "2024-03-01T12:00:00Z",
            "body": "hello there",
        },
    ),
    (
        "Gamma",
        "published",
        {"price": 5, "tags": [], "kind": "news", "author": "Hidden", "body": "50% off_today"},
    ),
    (
        "Delta",
        "draft",
        {"price": 99, "tags": ["secret"], "kind": "essay", "author": "Ada", "body": "draft text"},
    ),
    (
        "Epsilon",
        "published",
        {"kind": "news", "coauthors": ["Ada", "Grace"], "seo": {"title": "other"}},
    ),
    ("Zeta", "review", {"price": 10, "coauthors": ["Hidden"], "author": "Grace"}),
]


@pytest.fixture(scope="module")
def catalog(stack: Stack) -> Catalog:
    authors = unique("authors")
    posts = unique("posts")
    client = stack.client
    made = client.post(
        "/api/collections",
        json={
            "name": authors,
            "schema": {
                "properties": {
                    "name": {"type": "string"},
                    "country": {"type": "select", "options": ["uk", "us", "fr"]},
                }
            },
        },
    )
    assert made.status_code == 201, made.text
    author_ids = {}
    for name, country, status in AUTHORS:
        reply = client.post(
            "/api/content",
            json={
                "collection": authors,
                "title": name,
                "status": status,
                "data": {"name": name, "country": country},
            },
        )
        assert reply.status_code == 201, reply.text
        author_ids[name] = reply.json()["data"]["id"]
    schema = {
        "properties": {
            "price": {"type": "number"},
            "tags": {"type": "multiselect", "options": ["a", "b", "secret"]},
            "kind": {"type": "select", "options": ["news", "essay"]},
            "author": {"type": "reference", "collection": authors},
            "coauthors": {"type": "reference", "collection": authors, "multiple": True},
            "featured": {"type": "boolean"},
            "at": {"type": "datetime"},
            "seo": {"type": "object", "properties": {"title": {"type": "string"}}},
            "body": {"type": "text"},
        }
    }
    made = client.post("/api/collections", json={"name": posts, "schema": schema})
    assert made.status_code == 201, made.text
    by_title = {}
    for title, status, data in POSTS:
        data = dict(data)
        if "author" in data:
            data["author"] = author_ids[data["author"]]
        if "coauthors" in data:
            data["coauthors"] = [author_ids[n] for n in data["coauthors"]]
        reply = client.post(
            "/api/content",
            json={"collection": posts, "title": title, "status": status, "data": data},
        )
        assert reply.status_code == 201, reply.text
        by_title[title] = reply.json()["data"]
    return Catalog(authors, posts, author_ids, by_title)


def _titles(reply: Any) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [item["title"] for item in reply.json()["data"]]


def _query(stack: Stack, catalog: Catalog, anon: bool = False, **params: Any) -> list[str]:
    client = stack.anon if anon else stack.client
    return _titles(client.get(catalog.url, params=params, headers=NO_CACHE))


def test_three_spellings_give_one_answer(stack: Stack, catalog: Catalog) -> None:
    as_json = _query(stack, catalog, filter=json.dumps({"data.price": {"_gte": 10}}), sort="title")
    brackets = _query(stack, catalog, **{"filter[data.price][_gte]": "10"}, sort="title")
    where = {"and": [{"field": "data.price", "operator": "greater_than_equal", "value": 10}]}
    sonic = _query(stack, catalog, where=json.dumps(where), sort="title")
    assert as_json == brackets == sonic == ["Alpha", "Beta", "Delta", "Zeta"]
    nested = {"_or": [{"data.kind": {"_eq": "essay"}}, {"data.price": {"_lt": 6}}]}
    expected = ["Beta", "Delta", "Gamma"]
    assert _query(stack, catalog, filter=json.dumps(nested), sort="title") == expected
    assert (
        _query(
            stack,
            catalog,
            **{"filter[_or][0][data.kind][_eq]": "essay", "filter[_or][1][data][price][_lt]": "6"},
            sort="title",
        )
        == expected
    )
    sonic_or = {
        "or": [
            {"field": "data.kind", "operator": "equals", "value": "essay"},
            {"field": "data.price", "operator": "less_than", "value": 6},
        ]
    }
    assert _query(stack, catalog, where=json.dumps(sonic_or), sort="title") == expected


def test_operators_by_field_type(stack: Stack, catalog: Catalog) -> None:
    def q(filter_: dict[str, Any], anon: bool = False) -> list[str]:
        return sorted(_query(stack, catalog, anon, filter=json.dumps(filter_)))

    assert q({"data.price": {"_between": [6, 25.5]}}) == ["Alpha", "Beta", "Zeta"]
    assert q({"data.price": {"_nbetween": [6, 25.5]}}) == ["Delta", "Gamma"]
    assert q({"data.price": {"_in": [5, 99]}}) == ["Delta", "Gamma"]
    assert q({"data.price": {"_neq": 10}}) == ["Beta", "Delta", "Gamma"]  # not set: no match
    assert q({"data.price": {"_null": True}}) == ["Epsilon"]
    assert q({"data.tags": {"_contains": "b"}}) == ["Alpha", "Beta"]
    assert q({"data.tags": {"_ncontains": "b"}}) == ["Delta", "Gamma"]
    assert q({"data.tags": {"_all": ["a", "b"]}}) == ["Alpha"]
    assert q({"data.tags": {"_empty": True}}) == ["Epsilon", "Gamma", "Zeta"]
    assert q({"data.body": {"_contains": "ello"}}) == ["Alpha", "Beta"]
    assert q({"data.body": {"_contains": "Hello"}}) == ["Alpha"]
    assert q({"data.body": {"_icontains": "HELLO"}}) == ["Alpha", "Beta"]
    assert q({"data.body": {"_starts_with": "hello"}}) == ["Beta"]
    assert q({"data.body": {"_istarts_with": "hello"}}) == ["Alpha", "Beta"]
    assert q({"data.body": {"_ends_with": "World"}}) == ["Alpha"]
    assert q({"data.body": {"_iends_with": "TEXT"}}) == ["Delta"]
    assert q({"data.body": {"_like": "50\\% off%"}}) == ["Gamma"]  # % escaped: a literal one
    assert q({"data.body": {"_contains": "%"}}) == ["Gamma"]  # no wildcards in _contains
    assert q({"data.featured": {"_eq": True}}) == ["Alpha"]
    assert q({"data.featured": {"_eq": "false"}}) == ["Beta"]
    assert q({"data.at": {"_gt": "2024-02-01"}}) == ["Beta"]
    assert q({"data.at": {"_lt": "2024-01-01T03:00:00+02:00"}}) == ["Alpha"]
    assert q({"data.seo.title": {"_eq": "alpha seo"}}) == ["Alpha"]
    assert q({"_not": {"data.kind": {"_eq": "news"}}}) == ["Beta", "Delta", "Zeta"]
    assert q({"status": {"_in": ["draft", "review"]}}) == ["Delta", "Zeta"]
    assert q({"title": {"_gte": "E"}}) == ["Epsilon", "Gamma", "Zeta"]
    assert q({"version": {"_eq": 1}, "title": {"_starts_with": "A"}}) == ["Alpha"]
    first = catalog.posts_by_title["Alpha"]["created_at"]
    assert "Alpha" not in q({"created_at": {"_gt": first}})


def test_relations_one_hop_and_some_none(stack: Stack, catalog: Catalog) -> None:
    def q(filter_: dict[str, Any], anon: bool = False) -> list[str]:
        return sorted(_query(stack, catalog, anon, filter=json.dumps(filter_)))

    assert q({"data.author.name": {"_eq": "Ada"}}) == ["Alpha", "Delta"]
    assert q({"data.author.country": {"_in": ["us", "fr"]}}) == ["Beta", "Gamma", "Zeta"]
    assert q({"data.author.title": {"_starts_with": "G"}}) == ["Beta", "Zeta"]
    some = {"data.coauthors": {"_some": {"data.name": {"_eq": "Grace"}}}}
    assert q(some) == ["Epsilon"]
    none = {"data.coauthors": {"_none": {"data.country": {"_eq": "uk"}}}}
    assert q(none) == ["Alpha", "Beta", "Delta", "Gamma", "Zeta"]
    # Anonymous readers match nothing through a draft they may not see.
    assert q({"data.author.name": {"_eq": "Hidden"}}) == ["Gamma"]
    assert q({"data.author.name": {"_eq": "Hidden"}}, anon=True) == []
    assert q({"data.author.country": {"_eq": "fr"}}, anon=True) == []
    hidden = {"data.coauthors": {"_some": {"data.name": {"_eq": "Hidden"}}}}
    assert q(hidden) == ["Zeta"] and q(hidden, anon=True) == []


def test_sort_fields_total_and_drafts(stack: Stack, catalog: Catalog) -> None:
    by_price = _query(stack, catalog, sort="-data.price,title")
    # not set sorts as the largest: first when descending
    assert by_price == ["Epsilon", "Delta", "Beta", "Alpha", "Zeta", "Gamma"]
    sonic = json.dumps([{"field": "data.price", "order": "asc"}, {"field": "title"}])
    assert _query(stack, catalog, sort=sonic) == [
        "Gamma",
        "Alpha",
        "Zeta",
        "Beta",
        "Delta",
        "Epsilon",
    ]
    assert _query(stack, catalog, anon=True, sort="title") == ["Alpha", "Beta", "Epsilon", "Gamma"]
    reply = stack.anon.get(
        catalog.url,
        params={
            "fields": "title,data.price,data.seo.title",
            "sort": "title",
            "meta": "total",
            "limit": 2,
        },
    )
    body = reply.json()
    assert body["data"][0] == {
        "id": catalog.posts_by_title["Alpha"]["id"],
        "title": "Alpha",
        "data": {"price": 10, "seo": {"title": "alpha seo"}},
    }
    assert body["meta"]["total"] == 4 and body["meta"]["count"] == 2
    assert body["meta"]["next_cursor"]
    unfiltered = stack.anon.get(catalog.url).json()["meta"]
    assert "total" not in unfiltered  # counting is asked for


def test_a_cursor_walks_the_order_once(stack: Stack, catalog: Catalog) -> None:
    for sort in ("-data.price", "title", "-created_at", "data.at"):
        everything = _query(stack, catalog, sort=sort, limit=100)
        walked: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            body = stack.client.get(catalog.url, params=params).json()
            walked += [i["title"] for i in body["data"]]
            cursor = body["meta"]["next_cursor"]
            if not cursor:
                break
        assert walked == everything, sort
    first = stack.client.get(catalog.url, params={"sort": "title", "limit": 2}).json()
    cursor = first["meta"]["next_cursor"]
    other = stack.client.get(catalog.url, params={"sort": "-title", "cursor": cursor})
    assert "another query" in assert_error(other, 400, "invalid_argument")["error"]
    with_offset = stack.client.get(
        catalog.url, params={"sort": "title", "cursor": cursor, "offset": 2}
    )
    assert_error(with_offset, 400, "invalid_argument")
    assert_error(
        stack.client.get(catalog.url, params={"cursor": "garbage"}), 400, "invalid_argument"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter": '{"data.nope": {"_eq": 1}}'}, "filter.data.nope"),
        ({"filter": '{"data.price": {"_contains": "1"}}'}, "filter.data.price"),
        ({"filter": '{"data.price": {"_gt": "cheap"}}'}, "filter.data.price"),
        ({"filter": '{"data.price": {"_approx": 1}}'}, "filter.data.price"),
        ({"filter": "{not json"}, "filter"),
        (
            {
                "filter": json.dumps(
                    {
                        "_and": [
                            {
                                "_or": [
                                    {
                                        "_and": [
                                            {
                                                "_or": [
                                                    {
                                                        "_and": [
                                                            {
                                                                "_or": [
                                                                    {
                                                                        "_not": {
                                                                            "title": {"_eq": "x"}
                                                                        }
                                                                    }
                                                                ]
                                                            }
                                                        ]
                                                    }
                                                ]
                                            }
                                        ]
                                    }
                                ]
                            }
                        ]
                    }
                )
            },
            "filter",
        ),
        (
            {"filter": json.dumps({"_or": [{"title": {"_eq": str(n)}} for n in range(41)]})},
            "filter",
        ),
        (
            {"where": '{"and": [{"field": "title", "operator": "approx", "value": 1}]}'},
            "where.and.0.operator",
        ),
        ({"sort": "data.tags"}, "sort.data.tags"),
        ({"sort": "data.nope"}, "sort.data.nope"),
        ({"fields": "data.nope"}, "fields.data.nope"),
        ({"meta": "everything"}, "meta"),
        ({"filter[data.price][_gte][x]": "1"}, "filter.data.price"),
    ],
)
def test_what_does_not_fit_is_a_400_naming_it(
    stack: Stack, catalog: Catalog, params: dict[str, str], field: str
) -> None:
    body = assert_error(stack.client.get(catalog.url, params=params), 400, "invalid_argument")
    assert body["details"][0]["field"].startswith(field), body


def test_data_fields_need_a_collection(stack: Stack, catalog: Catalog) -> None:
    everywhere = stack.client.get("/api/content", params={"filter": '{"data.price":{"_gt":1}}'})
    assert "collection" in assert_error(everywhere, 400, "invalid_argument")["error"]
    scoped = stack.client.get(
        "/api/content",
        params={"collection": catalog.posts, "filter": '{"data.price":{"_gt":50}}'},
    )
    assert _titles(scoped) == ["Delta"]
    own = stack.client.get("/api/content", params={"filter": '{"title":{"_eq":"Gamma"}}'})
    assert "Gamma" in _titles(own)


def test_two_spellings_share_one_cache_entry(stack: Stack, catalog: Catalog) -> None:
    first = stack.anon.get(catalog.url, params={"filter": '{"data.kind":{"_eq":"essay"}}'})
    assert first.headers["x-cache-status"] == "MISS"
    second = stack.anon.get(catalog.url, params={"filter[data.kind][_eq]": "essay"})
    assert second.headers["x-cache-status"] == "HIT"
    assert second.json()["data"] == first.json()["data"]
    # A write that changes the answer drops it.
    beta = catalog.posts_by_title["Beta"]
    changed = stack.client.patch(f"/api/content/{beta['id']}", json={"data": {"kind": "news"}})
    assert changed.status_code == 200
    after = stack.anon.get(catalog.url, params={"filter[data.kind][_eq]": "essay"})
    assert after.headers["x-cache-status"] == "MISS" and _titles(after) == []
    restored = stack.client.patch(f"/api/content/{beta['id']}", json={"data": {"kind": "essay"}})
    assert restored.status_code == 200


@pytest.mark.parametrize("sort", ["-created_at", "title", "-data.price"])
def test_a_cursor_walk_is_exact_while_items_come_and_go(stack: Stack, sort: str) -> None:
    name = unique("churn")
    schema = {"properties": {"price": {"type": "number"}}}
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    url = f"/api/collections/{name}/content"

    def create(title: str, price: int) -> str:
        reply = stack.client.post(
            "/api/content",
            json={"collection": name, "title": title, "data": {"price": price}},
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["data"]["id"])

    kept = {create(f"item {n:02d}", n % 7) for n in range(30)}
    stop = threading.Event()
    churned: list[str] = []

    def churn() -> None:
        with httpx.Client(base_url=stack.base_url, headers=stack.client.headers) as client:
            n = 0
            while not stop.is_set():
                reply = client.post(
                    "/api/content",
                    json={"collection": name, "title": f"churn {n}", "data": {"price": n % 7}},
                )
                churned.append(reply.json()["data"]["id"])
                if len(churned) > 2:  # delete an earlier one: items come and go
                    client.delete(f"/api/content/{churned[-3]}")
                n += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        seen: list[str] = []
        params: dict[str, Any] = {"sort": sort, "limit": 3}
        while True:
            body = stack.client.get(url, params=params).json()
            seen += [i["id"] for i in body["data"]]
            if not body["meta"]["next_cursor"]:
                break
            params["cursor"] = body["meta"]["next_cursor"]
            time.sleep(0.05)  # let the writer in between pages
    finally:
        stop.set()
        worker.join()
    assert len(churned) > 3  # the walk really ran beside the writes
    assert len(seen) == len(set(seen))  # nothing twice
    assert kept <= set(seen)  # every item that stayed, once


def _index_names(stack: Stack) -> set[str]:
    """The field indexes in the content service's database, read from its catalogue."""
    if stack.backends["content"].env.get("HERON_CONTENT_DATABASE_URL"):
        query = "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_items_field_%'"
    else:
        query = "SELECT name FROM sqlite_master WHERE name LIKE 'ix_items_field_%'"
    return {row[0] for row in content_sql(stack, query)}


def test_indexed_fields_get_database_indexes(stack: Stack) -> None:
    name = unique("indexed")
    before = _index_names(stack)
    schema = {
        "properties": {
            "price": {"type": "number", "indexed": True},
            "sku": {"type": "string", "indexed": True},
            "note": {"type": "text"},
        }
    }
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    made = _index_names(stack) - before
    assert len(made) == 2
    for n in range(5):
        created = stack.client.post(
            "/api/content",
            json={"collection": name, "title": f"i{n}", "data": {"price": n, "sku": f"s{n}"}},
        )
        assert created.status_code == 201
    listed = stack.client.get(
        f"/api/collections/{name}/content",
        params={"filter": '{"data.price": {"_gte": 3}}', "sort": "-data.price"},
    )
    assert _titles(listed) == ["i4", "i3"]
    refused = stack.client.post(
        "/api/collections",
        json={
            "name": unique("bad"),
            "schema": {"properties": {"t": {"type": "json", "indexed": True}}},
        },
    )
    assert_error(refused, 400, "invalid_argument")
    schema["properties"]["sku"].pop("indexed")
    assert stack.client.patch(f"/api/collections/{name}", json={"schema": schema}).is_success
    assert len(_index_names(stack) - before) == 1  # unmarked: dropped
    for _ in range(5):
        item = stack.client.get(f"/api/collections/{name}/content").json()["data"][0]
        assert stack.client.delete(f"/api/content/{item['id']}").status_code == 200
    assert stack.client.delete(f"/api/collections/{name}").status_code == 200
    assert _index_names(stack) - before == set()  # the collection's indexes go with it


def test_a_relation_through_drafts_is_never_cached_for_the_wrong_reader(
    stack: Stack, catalog: Catalog
) -> None:
    params = {"filter": '{"data.author.name": {"_eq": "Hidden"}}', "status": "published"}
    assert _titles(stack.client.get(catalog.url, params=params)) == ["Gamma"]  # editor, cached
    assert _titles(stack.anon.get(catalog.url, params=params)) == []


def test_include_expands_references_as_the_reader_may_see_them(
    stack: Stack, catalog: Catalog
) -> None:
    params = {"include": "data.author,data.coauthors", "sort": "title"}
    editor = {i["title"]: i for i in stack.client.get(catalog.url, params=params).json()["data"]}
    assert editor["Alpha"]["data"]["author"]["title"] == "Ada"
    assert editor["Alpha"]["data"]["author"]["data"] == {"name": "Ada", "country": "uk"}
    assert editor["Gamma"]["data"]["author"]["title"] == "Hidden"  # editors see drafts
    assert [a["title"] for a in editor["Epsilon"]["data"]["coauthors"]] == ["Ada", "Grace"]
    anon = {i["title"]: i for i in stack.anon.get(catalog.url, params=params).json()["data"]}
    assert anon["Gamma"]["data"]["author"] == catalog.author_ids["Hidden"]  # only its id
    assert anon["Alpha"]["data"]["author"]["title"] == "Ada"
    # An included item has the API's item shape, the one its own route answers.
    ada = catalog.author_ids["Ada"]
    for reader in (stack.anon, stack.client):
        own = reader.get(f"/api/content/{ada}").json()["data"]
        page = reader.get(catalog.url, params=params).json()["data"]
        assert next(i for i in page if i["title"] == "Alpha")["data"]["author"] == own
    # An included item's change reaches the cached page.
    assert stack.client.patch(f"/api/content/{ada}", json={"title": "Ada L."}).status_code == 200
    again = stack.anon.get(catalog.url, params=params).json()["data"]
    assert next(i for i in again if i["title"] == "Alpha")["data"]["author"]["title"] == "Ada L."
    assert stack.client.patch(f"/api/content/{ada}", json={"title": "Ada"}).status_code == 200
    for bad in ("data.kind", "data.nope", "data.author.data.x.y.z", "title"):
        reply = stack.client.get(catalog.url, params={"include": bad})
        assert assert_error(reply, 400, "invalid_argument")["details"][0]["field"].startswith(
            "include"
        )


def test_search_finds_words_in_titles_and_text_fields(stack: Stack, catalog: Catalog) -> None:
    def found(anon: bool = False, **params: Any) -> list[str]:
        return _query(stack, catalog, anon, **params)

    assert sorted(found(search="hello")) == ["Alpha", "Beta"]
    assert found(search="HELLO world") == ["Alpha"]  # every word, any case
    assert found(search="hello", filter='{"data.kind": {"_eq": "essay"}}') == ["Beta"]
    assert found(search="hello", sort="-title") == ["Beta", "Alpha"]
    assert found(search="epsilon") == ["Epsilon"]  # the title counts
    assert found(search="draft") == ["Delta"]
    assert found(anon=True, search="draft") == []  # a draft never, for anonymous readers
    assert found(anon=True, search="draft", meta="total") == []
    reply = stack.client.get(catalog.url, params={"search": "!!!"})
    assert assert_error(reply, 400, "invalid_argument")["details"][0]["field"] == "search"
    # Ranked, and walkable by cursor like any order.
    ranked = found(search="hello", limit=100)
    walked: list[str] = []
    params: dict[str, Any] = {"search": "hello", "limit": 1}
    while True:
        body = stack.client.get(catalog.url, params=params).json()
        walked += [i["title"] for i in body["data"]]
        if not body["meta"]["next_cursor"]:
            break
        params["cursor"] = body["meta"]["next_cursor"]
    assert walked == ranked


def test_a_ranked_search_scores_its_newest_matches_and_lists_the_rest_after(
    stack: Stack,
) -> None:
    """Only the window's newest matches are scored (a common word in a large collection would
    otherwise have every item scored for each page); older matches follow, newest first, and a
    cursor walk keeps to the same window while new matches arrive."""
    name = unique("ranked")
    schema = {"properties": {"body": {"type": "text"}}}
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    url = f"/api/collections/{name}/content"
    # Item n (n = 0 the oldest) says "kestrel" hits[n] times in a body of twelve words.
    hits = [5, 9, 2, 11, 7, 1, 12, 4, 8, 3, 10, 6]
    ids = []
    for n, count in enumerate(hits):
        text = " ".join(["kestrel"] * count + ["filler"] * (12 - count))
        created = stack.client.post(
            "/api/content",
            json={
                "collection": name,
                "title": f"Item {n}",
                "status": "published",
                "data": {"body": text},
            },
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["data"]["id"])
        time.sleep(0.002)  # distinct creation times: "newest" is unambiguous
    newest = list(range(len(hits)))[-SEARCH_WINDOW:]
    older = list(range(len(hits)))[:-SEARCH_WINDOW]
    expected = [
        ids[n] for n in sorted(newest, key=lambda n: -hits[n]) + sorted(older, reverse=True)
    ]

    def page(**params: Any) -> dict[str, Any]:
        reply = stack.client.get(url, params={"search": "kestrel", **params}, headers=NO_CACHE)
        assert reply.status_code == 200, reply.text
        return reply.json()

    assert [i["id"] for i in page(limit=100)["data"]] == expected
    by_offset = [i["id"] for o in range(0, 12, 5) for i in page(limit=5, offset=o)["data"]]
    assert by_offset == expected
    assert page(meta="total")["meta"]["total"] == len(hits)
    # A given sort is the order, every match alike.
    sorted_page = page(limit=100, sort="-created_at")["data"]
    assert [i["id"] for i in sorted_page] == ids[::-1]

    # A cursor walk, two at a time, while three new best matches arrive: the items that were
    # there come exactly once and in the order they had (the window is the first page's).
    walked: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    arrived = False
    while True:
        body = page(**params)
        walked += [i["id"] for i in body["data"]]
        if not arrived:
            for n in range(3):
                assert (
                    stack.client.post(
                        "/api/content",
                        json={
                            "collection": name,
                            "title": f"New {n}",
                            "status": "published",
                            "data": {"body": "kestrel " * 12},
                        },
                    ).status_code
                    == 201
                )
            arrived = True
        if not body["meta"]["next_cursor"]:
            break
        params["cursor"] = body["meta"]["next_cursor"]
    assert [i for i in walked if i in ids] == expected
    # A cursor's window is checked like the rest of it: altered or missing, it is a 400.
    cursor = page(limit=2)["meta"]["next_cursor"]
    doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert doc["w"]
    for window in (["x", 1], None):
        bad = {**doc, "w": window} if window else {k: v for k, v in doc.items() if k != "w"}
        token = base64.urlsafe_b64encode(json.dumps(bad).encode()).decode().rstrip("=")
        reply = stack.client.get(url, params={"search": "kestrel", "limit": 2, "cursor": token})
        assert assert_error(reply, 400, "invalid_argument")["details"][0]["field"] == "cursor"
    # A new first page has a new window: the three newest and best lead it.
    fresh = [i["title"] for i in page(limit=3)["data"]]
    assert sorted(fresh) == ["New 0", "New 1", "New 2"]


def test_search_follows_every_write(stack: Stack) -> None:
    name = unique("searchable")
    schema = {
        "properties": {
            "body": {"type": "richtext"},
            "seo": {"type": "object", "properties": {"summary": {"type": "string"}}},
            "count": {"type": "integer"},
        }
    }
    assert stack.client.post("/api/collections", json={"name": name, "schema": schema}).is_success
    url = f"/api/collections/{name}/content"
    item = stack.client.post(
        "/api/content",
        json={
            "collection": name,
            "title": "Morning",
            "data": {"body": "<p>A heron <strong>wading</strong></p>", "seo": {"summary": "marsh"}},
        },
    ).json()["data"]

    def hits(words: str) -> list[str]:
        return _titles(stack.client.get(url, params={"search": words}, headers=NO_CACHE))

    assert hits("wading") == hits("marsh") == hits("morning") == ["Morning"]
    assert hits("strong") == []  # markup is not text
    patched = stack.client.patch(
        f"/api/content/{item['id']}", json={"title": "Evening", "data": {"body": "<p>egret</p>"}}
    )
    assert patched.status_code == 200
    assert hits("egret") == hits("evening") == ["Evening"]
    assert hits("wading") == hits("morning") == []
    assert stack.client.delete(f"/api/content/{item['id']}").status_code == 200
    assert hits("egret") == []
