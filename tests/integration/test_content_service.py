"""The content service over gRPC against real PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import logging

import grpc
import orjson
import pytest
from cms.common.v1.common_pb2 import Idempotency, PageRequest
from cms.content.v1 import content_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from heron_common.context import request_id_var
from heron_common.db import Database, create_engine
from heron_common.errors import (
    ERROR_TRAILER_KEY,
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from heron_common.logging import JsonFormatter
from heron_common.rpc.client import call
from heron_common.service import migrate
from heron_content.server import SPEC
from sqlalchemy import event

from tests.integration.conftest import ContentBackend

SCHEMA = orjson.dumps({"properties": {"body": {"type": "text", "required": True}}})


async def make_collection(backend: ContentBackend, name: str = "posts") -> pb.Collection:
    return await call(
        backend.stub.CreateCollection,
        pb.CreateCollectionRequest(name=name, schema_json=SCHEMA),
        timeout=5,
    )


async def make_item(backend: ContentBackend, title: str = "Hello", **kw: object) -> pb.Item:
    request = pb.CreateItemRequest(
        collection="posts",
        title=title,
        data_json=b'{"body": "b"}',
        **kw,  # type: ignore[arg-type]
    )
    return await call(backend.stub.CreateItem, request, timeout=5)


async def test_health_and_reflection(backend: ContentBackend) -> None:
    health = health_pb2_grpc.HealthStub(backend.channel)
    for service in ("", "cms.content.v1.ContentService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(backend.channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name async for r in responses for s in r.list_services_response.service}
    assert "cms.content.v1.ContentService" in names


async def test_domain_errors_carry_status_and_details(backend: ContentBackend) -> None:
    await make_collection(backend)
    with pytest.raises(grpc.aio.AioRpcError) as raw:
        await backend.stub.CreateItem(
            pb.CreateItemRequest(collection="posts", title="t", data_json=b"{}"), timeout=5
        )
    assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailer = dict(raw.value.trailing_metadata() or ())[ERROR_TRAILER_KEY]
    assert orjson.loads(trailer)["details"] == [{"field": "data.body", "message": "is required"}]

    with pytest.raises(InvalidArgument):
        await call(
            backend.stub.CreateItem,
            pb.CreateItemRequest(collection="posts", title="t", data_json=b"{nope"),
            timeout=5,
        )
    with pytest.raises(NotFound):
        await call(backend.stub.GetItem, pb.GetItemRequest(id="missing"), timeout=5)
    with pytest.raises(AlreadyExists):
        await make_collection(backend)


async def test_idempotent_create_under_concurrency(backend: ContentBackend) -> None:
    await make_collection(backend)
    results = await asyncio.gather(
        *(make_item(backend, idempotency=Idempotency(key="k-1")) for _ in range(8))
    )
    assert len({r.id for r in results}) == 1
    listed = await call(backend.stub.ListItems, pb.ListItemsRequest(collection="posts"), timeout=5)
    assert len(listed.items) == 1 and not listed.page.next_cursor


async def test_concurrent_updates_lose_nothing(backend: ContentBackend) -> None:
    await make_collection(backend)
    item = await make_item(backend)
    attempts = [
        call(
            backend.stub.UpdateItem,
            pb.UpdateItemRequest(id=item.id, title=f"t{n}", expected_version=1),
            timeout=5,
        )
        for n in range(6)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, pb.Item)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if r not in winners), results
    final = await call(backend.stub.GetItem, pb.GetItemRequest(id=item.id), timeout=5)
    assert (final.version, final.title) == (2, winners[0].title)


async def test_a_unique_value_is_won_by_one_of_many_concurrent_writes(
    backend: ContentBackend,
) -> None:
    schema = b'{"properties": {"sku": {"type": "string", "unique": true}}}'
    await call(
        backend.stub.CreateCollection,
        pb.CreateCollectionRequest(name="products", schema_json=schema),
        timeout=5,
    )
    attempts = [
        call(
            backend.stub.CreateItem,
            pb.CreateItemRequest(collection="products", title=f"p{n}", data_json=b'{"sku": "X"}'),
            timeout=5,
        )
        for n in range(8)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, pb.Item)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if r not in winners), results
    listed = await call(
        backend.stub.ListItems, pb.ListItemsRequest(collection="products"), timeout=5
    )
    assert [i.id for i in listed.items] == [winners[0].id]


async def test_derived_slugs_stay_unique(backend: ContentBackend) -> None:
    await make_collection(backend)
    slugs = [(await make_item(backend, title="Same Title")).slug for _ in range(3)]
    assert slugs == ["same-title", "same-title-2", "same-title-3"]
    concurrent = await asyncio.gather(*(make_item(backend, title="Race") for _ in range(10)))
    assert len({item.slug for item in concurrent}) == 10


async def test_publish_sets_published_at_once(backend: ContentBackend) -> None:
    await make_collection(backend)
    item = await make_item(backend)
    assert not item.HasField("published_at")
    published = await call(
        backend.stub.UpdateItem, pb.UpdateItemRequest(id=item.id, status="published"), timeout=5
    )
    assert published.published_at > 0
    again = await call(
        backend.stub.UpdateItem, pb.UpdateItemRequest(id=item.id, title="x"), timeout=5
    )
    assert again.published_at == published.published_at


async def test_request_id_reaches_the_service(
    backend: ContentBackend, caplog: pytest.LogCaptureFixture
) -> None:
    await make_collection(backend)
    token = request_id_var.set("integration-rid")
    try:
        with caplog.at_level(logging.INFO, logger="heron.content"):
            item = await make_item(backend)
    finally:
        request_id_var.reset(token)
    record = next(r for r in caplog.records if r.getMessage() == "item created")
    assert record.__dict__["item_id"] == item.id
    # Bound by the server's interceptor from the call's metadata, in the server's task.
    assert '"request_id":"integration-rid"' in JsonFormatter("content").format(record)


async def test_migrations_are_idempotent(backend: ContentBackend) -> None:
    assert await migrate(SPEC, backend.database) is False  # the fixture created the store
    assert await migrate(SPEC, backend.database) is False
    await make_collection(backend)


async def test_concurrent_first_migrations(fresh_postgres_url: str) -> None:
    databases = [Database(create_engine(fresh_postgres_url)) for _ in range(3)]
    try:
        created = await asyncio.gather(*(migrate(SPEC, db) for db in databases))
        assert sorted(created) == [False, False, True]  # exactly one created the schema
    finally:
        for db in databases:
            await db.dispose()


async def test_unreachable_database_is_unavailable(unused_tcp_port: int) -> None:
    database = Database(create_engine(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/x"))
    try:
        with pytest.raises(Unavailable):
            async with database.read():
                pass
    finally:
        await database.dispose()


async def test_include_reads_one_query_per_level_whatever_the_page_size(
    backend: ContentBackend,
) -> None:
    """A page with two included reference fields costs one statement more than without them,
    and a second level one more: never one per item."""
    org_schema = {"properties": {"label": {"type": "string"}}}
    await call(
        backend.stub.CreateCollection,
        pb.CreateCollectionRequest(name="orgs", schema_json=orjson.dumps(org_schema)),
        timeout=5,
    )
    person = {"properties": {"org": {"type": "reference", "collection": "orgs"}}}
    await call(
        backend.stub.CreateCollection,
        pb.CreateCollectionRequest(name="people", schema_json=orjson.dumps(person)),
        timeout=5,
    )
    posts = {
        "properties": {
            "author": {"type": "reference", "collection": "people"},
            "crew": {"type": "reference", "collection": "people", "multiple": True},
        }
    }
    await call(
        backend.stub.CreateCollection,
        pb.CreateCollectionRequest(name="notes", schema_json=orjson.dumps(posts)),
        timeout=5,
    )

    async def create(collection: str, title: str, data: dict[str, object]) -> str:
        request = pb.CreateItemRequest(
            collection=collection, title=title, data_json=orjson.dumps(data), status="published"
        )
        return str((await call(backend.stub.CreateItem, request, timeout=5)).id)

    org = await create("orgs", "Org", {"label": "x"})
    people = [await create("people", f"P{n}", {"org": org}) for n in range(4)]
    for n in range(60):
        await create("notes", f"N{n}", {"author": people[n % 4], "crew": people[: n % 3]})
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    async def cost(include: list[str], limit: int) -> tuple[int, pb.ListItemsResponse]:
        query = orjson.dumps({"include": include}) if include else b""
        request = pb.ListItemsRequest(
            collection="notes", page=PageRequest(limit=limit), query_json=query
        )
        statements.clear()
        reply = await call(backend.stub.ListItems, request, timeout=5)
        return len(statements), reply

    event.listen(backend.database.engine.sync_engine, "before_cursor_execute", count)
    try:
        plain, _ = await cost([], 50)
        for limit in (5, 50):
            one_level, reply = await cost(["data.author", "data.crew"], limit)
            assert one_level == plain + 1, statements
            first = orjson.loads(reply.items[0].data_json)
            assert first["author"]["title"].startswith("P")
            assert all(isinstance(c, dict) for c in first["crew"])
        two_levels, reply = await cost(["data.author.org", "data.crew"], 50)
        assert two_levels == plain + 2, statements
        data = orjson.loads(reply.items[0].data_json)
        assert data["author"]["data"]["org"]["data"] == {"label": "x"}
    finally:
        event.remove(backend.database.engine.sync_engine, "before_cursor_execute", count)
