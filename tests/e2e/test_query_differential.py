"""The query language against a plain-Python evaluator, on SQLite and PostgreSQL.

Generated filters (every operator on every kind of field, nesting with `_and`/`_or`/`_not`,
relations), random sorts and cursor walks run through the gateway in every spelling that can
say them (JSON, brackets, SonicJS's `where`), as an anonymous reader and as an editor; each
answer must be exactly the items, in exactly the order, that the evaluator below computes from
the seeded data. The evaluator shares no code with the service: it is the documented semantics,
written out.

The filter-oracle sweep at the end asks every operator on every surface for drafts as an
anonymous reader and checks that no answer contains or counts one.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_content_api import unique

SEED = 20261201
# Each query is sent in up to three spellings, as anonymous and as editor: about 5.4 requests
# per query, on each database. 300 keep the suite within its time on a slow 2-core machine.
QUERIES = 300
NO_CACHE = {"cache-control": "no-cache"}

NAMES = ["alice", "Bob", "Émile", "zoë", "ÅSA", "bob", "Carl", "carla", "50%_off", "a\\b", ""]
TAGS = ["a", "b", "c", "d"]
KINDS = ["x", "y", "z"]
DAYS = ["2024-01-01", "2024-02-29", "2024-03-15", "2025-07-04"]
STATUSES = ["draft", "published", "published", "review", "archived"]


@dataclass
class World:
    people: str
    things: str
    items: list[dict[str, Any]]
    """Every thing, as an editor reads it."""
    people_by_id: dict[str, dict[str, Any]]


def _maybe(rng: random.Random, value: Any, p: float = 0.75) -> Any:
    return value if rng.random() < p else None


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    rng = random.Random(SEED)
    client = stack.client
    people, things = unique("people"), unique("things")
    person_schema = {"properties": {"pname": {"type": "string"}, "level": {"type": "integer"}}}
    assert client.post(
        "/api/collections", json={"name": people, "schema": person_schema}
    ).is_success
    people_by_id = {}
    for n in range(8):
        data = {
            k: v
            for k, v in {"pname": rng.choice(NAMES[:8]), "level": _maybe(rng, n % 4)}.items()
            if v is not None
        }
        reply = client.post(
            "/api/content",
            json={
                "collection": people,
                "title": f"Person {n}",
                "status": rng.choice(STATUSES),
                "data": data,
            },
        )
        assert reply.status_code == 201, reply.text
        person = reply.json()["data"]
        people_by_id[person["id"]] = person
    thing_schema = {
        "properties": {
            "n": {"type": "integer"},
            "price": {"type": "number"},
            "name": {"type": "string"},
            "tags": {"type": "multiselect", "options": TAGS},
            "flag": {"type": "boolean"},
            "day": {"type": "date"},
            "kind": {"type": "select", "options": KINDS},
            "who": {"type": "reference", "collection": people},
            "crew": {"type": "reference", "collection": people, "multiple": True},
        }
    }
    assert client.post("/api/collections", json={"name": things, "schema": thing_schema}).is_success
    person_ids = list(people_by_id)
    for n in range(60):
        data = {
            "n": _maybe(rng, rng.randint(-3, 12)),
            "price": _maybe(rng, rng.choice([0, 1.5, 2, 9.99, 10, 100, -4.25])),
            "name": _maybe(rng, rng.choice(NAMES)),
            "tags": _maybe(rng, sorted(rng.sample(TAGS, rng.randint(0, 3)))),
            "flag": _maybe(rng, rng.random() < 0.5),
            "day": _maybe(rng, rng.choice(DAYS)),
            "kind": _maybe(rng, rng.choice(KINDS)),
            "who": _maybe(rng, rng.choice(person_ids)),
            "crew": _maybe(rng, rng.sample(person_ids, rng.randint(0, 3))),
        }
        data = {k: v for k, v in data.items() if v is not None}
        reply = client.post(
            "/api/content",
            json={
                "collection": things,
                "title": f"{rng.choice(NAMES) or 'x'} {n}",
                "status": rng.choice(STATUSES),
                "data": data,
            },
        )
        assert reply.status_code == 201, reply.text
    listed = client.get(f"/api/collections/{things}/content", params={"limit": 1000}).json()
    return World(people, things, listed["data"], people_by_id)


# -- the evaluator --------------------------------------------------------------------------------
def _value(item: dict[str, Any], path: str) -> Any:
    if path.startswith("data."):
        return item["data"].get(path[5:])
    return item[path]


def _like(value: str, pattern: str) -> bool:
    regex, n = "", 0
    while n < len(pattern):
        c = pattern[n]
        if c == "\\" and n + 1 < len(pattern):
            regex += re.escape(pattern[n + 1])
            n += 2
            continue
        regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        n += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _typed(path: str, raw: Any) -> Any:
    field = path.rsplit(".", 1)[-1]
    if field in ("n", "level", "version", "created_at"):
        return int(raw)
    if field == "price":
        return float(raw)
    if field == "flag":
        return raw in (True, "true")
    return raw


def _compare(op: str, value: Any, arg: Any) -> bool:
    if op == "_eq":
        return bool(value == arg)
    if op == "_neq":
        return bool(value != arg)
    if op == "_lt":
        return bool(value < arg)
    if op == "_lte":
        return bool(value <= arg)
    if op == "_gt":
        return bool(value > arg)
    if op == "_gte":
        return bool(value >= arg)
    raise AssertionError(op)


def matches(node: dict[str, Any], item: dict[str, Any], world: World, anon: bool) -> bool:
    if "_and" in node:
        return all(matches(n, item, world, anon) for n in node["_and"])
    if "_or" in node:
        return any(matches(n, item, world, anon) for n in node["_or"])
    if "_not" in node:
        return not matches(node["_not"], item, world, anon)
    ((path, condition),) = node.items()
    ((op, arg),) = condition.items()
    if path.startswith("data.who."):  # one hop: the person it points to, if visible
        person = world.people_by_id.get(item["data"].get("who", ""))
        if person is None or (anon and person["status"] != "published"):
            return False
        rest = path[len("data.who.") :]
        return matches(
            {("data." + rest if rest != "title" else rest): condition}, person, world, anon
        )
    value = _value(item, path)
    if op in ("_some", "_none"):
        crew = [world.people_by_id[i] for i in item["data"].get("crew", [])]
        visible = [p for p in crew if not anon or p["status"] == "published"]
        found = any(matches(arg, p, world, anon) for p in visible)
        return found if op == "_some" else not found
    if op == "_null":
        return value is None
    if op == "_nnull":
        return value is not None
    if op == "_empty":
        return value in (None, "", [], {})
    if op == "_nempty":
        return value not in (None, "", [], {})
    if value is None:
        return False
    if isinstance(value, list):  # tags
        if op == "_contains":
            return arg in value
        if op == "_ncontains":
            return arg not in value
        if op == "_in":
            return any(a in value for a in arg)
        if op == "_all":
            return all(a in value for a in arg)
        raise AssertionError(op)
    if op in ("_in", "_nin"):
        found = value in [_typed(path, a) for a in arg]
        return found if op == "_in" else not found
    if op in ("_between", "_nbetween"):
        low, high = (_typed(path, a) for a in arg)
        inside = low <= value <= high
        return inside if op == "_between" else not inside
    text_ops: dict[str, Callable[[str, str], bool]] = {
        "_contains": lambda v, a: a in v,
        "_ncontains": lambda v, a: a not in v,
        "_icontains": lambda v, a: a.lower() in v.lower(),
        "_starts_with": lambda v, a: v.startswith(a),
        "_istarts_with": lambda v, a: v.lower().startswith(a.lower()),
        "_ends_with": lambda v, a: v.endswith(a),
        "_iends_with": lambda v, a: v.lower().endswith(a.lower()),
        "_like": lambda v, a: _like(v.lower(), a.lower()),
    }
    if op in text_ops:
        return text_ops[op](value, arg)
    return _compare(op, value, _typed(path, arg))


def ordered(items: list[dict[str, Any]], sort: list[str]) -> list[dict[str, Any]]:
    keys = sort or ["-created_at"]
    descending_last = keys[-1].startswith("-")

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for key in keys:
            path, descending = key.removeprefix("-"), key.startswith("-")
            x, y = _value(a, path), _value(b, path)
            if x == y:
                continue
            # not set sorts as larger than any value
            bigger = x is None or (y is not None and x > y)
            return (-1 if bigger else 1) if descending else (1 if bigger else -1)
        if a["id"] == b["id"]:
            return 0
        return (
            (1 if a["id"] < b["id"] else -1)
            if descending_last
            else (-1 if a["id"] < b["id"] else 1)
        )

    return sorted(items, key=functools.cmp_to_key(compare))


def expected(world: World, node: dict[str, Any] | None, sort: list[str], anon: bool) -> list[str]:
    chosen = [
        i
        for i in world.items
        if (not anon or i["status"] == "published")
        and (node is None or matches(node, i, world, anon))
    ]
    return [i["id"] for i in ordered(chosen, sort)]


# -- the generator --------------------------------------------------------------------------------
SCALAR_FIELDS: dict[str, list[str]] = {
    "data.n": [
        "_eq",
        "_neq",
        "_lt",
        "_lte",
        "_gt",
        "_gte",
        "_in",
        "_nin",
        "_between",
        "_nbetween",
        "_null",
        "_nnull",
    ],
    "data.price": ["_eq", "_neq", "_lt", "_gte", "_in", "_between", "_null", "_nnull"],
    "data.name": [
        "_eq",
        "_neq",
        "_lt",
        "_gt",
        "_in",
        "_nin",
        "_contains",
        "_ncontains",
        "_icontains",
        "_starts_with",
        "_istarts_with",
        "_ends_with",
        "_iends_with",
        "_like",
        "_null",
        "_empty",
        "_nempty",
    ],
    "data.flag": ["_eq", "_neq", "_null", "_nnull"],
    "data.day": ["_eq", "_lt", "_gte", "_between", "_in", "_null"],
    "data.kind": ["_eq", "_neq", "_in", "_nin", "_null"],
    "data.tags": ["_contains", "_ncontains", "_in", "_all", "_empty", "_nempty", "_null"],
    "title": ["_eq", "_contains", "_istarts_with", "_gt", "_like"],
    "status": ["_eq", "_neq", "_in", "_nin"],
    "version": ["_eq", "_gte"],
    "data.who.pname": ["_eq", "_neq", "_in", "_icontains", "_null"],
    "data.who.level": ["_gt", "_lte", "_eq"],
    "data.who.title": ["_eq", "_starts_with"],
}


def _sample(rng: random.Random, path: str) -> Any:
    field = path.rsplit(".", 1)[-1]
    if field in ("n", "level", "version"):
        return rng.randint(-2, 12)
    if field == "price":
        return rng.choice([0, 1.5, 2, 9.99, 10, 50, -4.25])
    if field == "flag":
        return rng.random() < 0.5
    if field == "day":
        return rng.choice([*DAYS, "2024-02-01"])
    if field == "kind":
        return rng.choice(KINDS)
    if field == "tags":
        return rng.choice(TAGS)
    if field == "status":
        return rng.choice(["draft", "published", "review", "archived"])
    if field == "title":
        return rng.choice(["Person 1", "Bob", "b", "zoë 3", "%o%", "É"])
    text = rng.choice([*NAMES, "li", "o", "ÉMILE", "%o%", "b_b", "50\\%%", "a\\\\b"])
    return text


def _condition(rng: random.Random, depth: int) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.12:
        return {"data.crew": {rng.choice(["_some", "_none"]): _condition_in_person(rng)}}
    path = rng.choice(list(SCALAR_FIELDS))
    op = rng.choice(SCALAR_FIELDS[path])
    if op in ("_null", "_nnull", "_empty", "_nempty"):
        return {path: {op: True}}
    if op in ("_in", "_nin", "_all"):
        return {path: {op: [_sample(rng, path) for _ in range(rng.randint(1, 3))]}}
    if op in ("_between", "_nbetween"):
        low, high = sorted(
            [_sample(rng, path), _sample(rng, path)], key=str if path.endswith("day") else None
        )
        return {path: {op: [low, high]}}
    value = _sample(rng, path)
    if op in (
        "_contains",
        "_ncontains",
        "_icontains",
        "_starts_with",
        "_istarts_with",
        "_ends_with",
        "_iends_with",
        "_like",
    ) and not isinstance(value, str):
        value = str(value)
    return {path: {op: value}}


def _condition_in_person(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"data.pname": {rng.choice(["_eq", "_icontains", "_neq"]): rng.choice(NAMES[:8])}}
    return {"data.level": {rng.choice(["_gt", "_lte", "_eq"]): rng.randint(0, 3)}}


def generate(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        return {"_and": [generate(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    if depth < 3 and roll < 0.4:
        return {"_or": [generate(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    if depth < 3 and roll < 0.5:
        return {"_not": generate(rng, depth + 1)}
    return _condition(rng, depth)


SORTABLE = [
    "title",
    "data.n",
    "data.price",
    "data.name",
    "data.day",
    "created_at",
    "data.flag",
    "version",
]


def random_sort(rng: random.Random) -> list[str]:
    if rng.random() < 0.3:
        return []
    keys = rng.sample(SORTABLE, rng.randint(1, 2))
    return [("-" if rng.random() < 0.5 else "") + k for k in keys]


# -- spellings ------------------------------------------------------------------------------------
def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, str) else value


def brackets(node: Any, prefix: str = "filter") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [pair for key, value in node.items() for pair in brackets(value, f"{prefix}[{key}]")]
    if isinstance(node, list):
        if all(not isinstance(v, dict | list) for v in node):  # a list value
            return [(f"{prefix}[]", _scalar(v)) for v in node]
        return [pair for n, value in enumerate(node) for pair in brackets(value, f"{prefix}[{n}]")]
    return [(prefix, _scalar(node))]


SONIC = {
    "_eq": "equals",
    "_neq": "not_equals",
    "_gt": "greater_than",
    "_gte": "greater_than_equal",
    "_lt": "less_than",
    "_lte": "less_than_equal",
    "_contains": "contains",
    "_in": "in",
    "_nin": "not_in",
    "_all": "all",
    "_starts_with": "starts_with",
    "_ends_with": "ends_with",
}


def sonic(node: dict[str, Any]) -> dict[str, Any] | None:
    """SonicJS's `where` for the filters it can say (no `_not`, its operators only)."""
    if "_and" in node or "_or" in node:
        kind = "and" if "_and" in node else "or"
        parts = [sonic(n) for n in node["_" + kind]]
        if any(p is None for p in parts):
            return None
        return {kind: [_sonic_entry(p) for p in parts if p is not None]}
    if "_not" in node:
        return None
    ((path, condition),) = node.items()
    ((op, arg),) = condition.items()
    if op == "_nnull":
        return {"and": [{"field": path, "operator": "exists", "value": True}]}
    if op == "_null":
        return {"and": [{"field": path, "operator": "exists", "value": False}]}
    if op not in SONIC or path == "data.crew":
        return None
    return {"and": [{"field": path, "operator": SONIC[op], "value": arg}]}


def _sonic_entry(where: dict[str, Any]) -> dict[str, Any]:
    """A group as an entry of a list: a lone condition as itself."""
    if set(where) == {"and"} and len(where["and"]) == 1:
        return dict(where["and"][0])
    return where


def _ids(stack: Stack, world: World, params: list[tuple[str, str]], anon: bool) -> list[str]:
    client = stack.anon if anon else stack.client
    reply = client.get(
        f"/api/collections/{world.things}/content",
        params=[*params, ("limit", "1000")],
        headers=NO_CACHE,
    )
    assert reply.status_code == 200, (params, reply.text, stack.logs()[-3000:])
    return [i["id"] for i in reply.json()["data"]]


@pytest.mark.timeout(420)
def test_generated_queries_match_the_evaluator(stack: Stack, world: World) -> None:
    rng = random.Random(SEED)
    spelled = {"json": 0, "brackets": 0, "where": 0}
    sizes: list[int] = []
    for number in range(QUERIES):
        node = generate(rng)
        sort = random_sort(rng)
        sort_param = [("sort", ",".join(sort))] if sort else []
        spellings = {
            "json": [("filter", json.dumps(node))],
            "brackets": brackets(node),
        }
        where = sonic(node)
        if where is not None:
            spellings["where"] = [("where", json.dumps(where))]
        for anon in (True, False):
            want = expected(world, node, sort, anon)
            sizes.append(len(want))
            for name, params in spellings.items():
                got = _ids(stack, world, [*params, *sort_param], anon)
                assert got == want, (number, name, anon, node, sort)
                spelled[name] += 1
    assert spelled["where"] > QUERIES // 4  # the SonicJS spelling was exercised, not skipped
    # The generated filters discriminate: most select some items but not all of them.
    telling = [n for n in sizes if 0 < n < len(world.items)]
    assert len(telling) > len(sizes) // 2, sorted(sizes)


def test_projections_match_the_evaluator(stack: Stack, world: World) -> None:
    """`fields=` with random filters and sorts: the same items in the same order, each with
    exactly the fields asked for (and its id)."""
    rng = random.Random(SEED + 2)
    by_id = {i["id"]: i for i in world.items}
    for _ in range(40):
        node, sort = generate(rng), random_sort(rng)
        own = rng.sample(["title", "status", "version", "created_at"], rng.randint(0, 2))
        data = rng.sample(["data.n", "data.name", "data.tags", "data.who"], rng.randint(1, 2))
        params = [("filter", json.dumps(node)), ("fields", ",".join(own + data)), ("limit", "1000")]
        if sort:
            params.append(("sort", ",".join(sort)))
        reply = stack.client.get(f"/api/collections/{world.things}/content", params=params)
        assert reply.status_code == 200, reply.text
        got = reply.json()["data"]
        assert [i["id"] for i in got] == expected(world, node, sort, anon=False)
        for item in got:
            full = by_id[item["id"]]
            shown = {k[5:]: full["data"][k[5:]] for k in data if k[5:] in full["data"]}
            assert item == {"id": full["id"], **{k: full[k] for k in own}, "data": shown}


def test_cursor_walks_match_the_evaluator(stack: Stack, world: World) -> None:
    rng = random.Random(SEED + 1)
    for _ in range(12):
        node = generate(rng) if rng.random() < 0.7 else None
        sort = random_sort(rng)
        anon = rng.random() < 0.5
        want = expected(world, node, sort, anon)
        client = stack.anon if anon else stack.client
        walked: list[str] = []
        params: dict[str, Any] = {"limit": rng.randint(1, 9)}
        if node is not None:
            params["filter"] = json.dumps(node)
        if sort:
            params["sort"] = ",".join(sort)
        while True:
            reply = client.get(f"/api/collections/{world.things}/content", params=params)
            assert reply.status_code == 200, (params, reply.text)
            body = reply.json()
            walked += [i["id"] for i in body["data"]]
            if not body["meta"]["next_cursor"]:
                break
            params["cursor"] = body["meta"]["next_cursor"]
        assert walked == want, (node, sort, anon)


# -- the filter oracle ----------------------------------------------------------------------------
def test_no_surface_reveals_a_draft_to_anonymous_readers(stack: Stack, world: World) -> None:
    drafts = {i["id"] for i in world.items if i["status"] != "published"}
    published = [i for i in world.items if i["status"] == "published"]
    draft_people = {p["id"] for p in world.people_by_id.values() if p["status"] != "published"}
    assert drafts and draft_people
    url = f"/api/collections/{world.things}/content"
    probes: list[list[tuple[str, str]]] = []
    for path, ops in SCALAR_FIELDS.items():
        for op in ops:
            value: Any = (
                True
                if op in ("_null", "_nnull", "_empty", "_nempty")
                else (
                    ["draft", "review"]
                    if path == "status" and op in ("_in", "_nin")
                    else [_sample(random.Random(1), path)]
                    if op in ("_in", "_nin", "_all", "_between", "_nbetween")
                    else "draft"
                    if path == "status"
                    else _sample(random.Random(2), path)
                )
            )
            if op in ("_between", "_nbetween"):
                value = [value[0], value[0]]
            node = {path: {op: value}}
            probes += [[("filter", json.dumps(node))], brackets(node)]
            where = sonic(node)
            if where is not None:
                probes.append([("where", json.dumps(where))])
    for op in ("_some", "_none"):
        probes.append([("filter", json.dumps({"data.crew": {op: {"data.level": {"_gte": 0}}}}))])
    probes += [
        [("filter", json.dumps({"author_id": {"_eq": world.items[0]["author_id"]}}))],
        [("filter", json.dumps({"_not": {"status": {"_eq": "published"}}}))],
        [("status", "published"), ("filter", json.dumps({"status": {"_neq": "published"}}))],
        [("sort", "status")],
        [("sort", "-data.n"), ("fields", "title,status")],
        [("fields", "status,data.n")],
        [("filter", json.dumps({"data.who": {"_in": sorted(draft_people)}}))],
        [("include", "data.who,data.crew")],
        *([("search", word)] for word in ("alice", "bob", "carl", "x", "0", "1")),
        [("search", "bob"), ("sort", "status")],
        [("include", "data.who"), ("filter", json.dumps({"data.who.level": {"_gte": 0}}))],
    ]
    for params in probes:
        for extra in ([], [("meta", "total")]):
            reply = stack.anon.get(url, params=[*params, *extra, ("limit", "1000")])
            if reply.status_code == 400:
                continue  # a filter that does not fit: nothing answered
            assert reply.status_code == 200, (params, reply.text)
            body = reply.json()
            ids = {i["id"] for i in body["data"]}
            assert not ids & drafts, params
            assert {i.get("status", "published") for i in body["data"]} <= {"published"}
            text = json.dumps(body)
            assert not any(f'"id": "{d}"' in text for d in draft_people), params  # never included
            if extra:
                assert body["meta"]["total"] <= len(published), params
