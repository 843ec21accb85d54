"""Who may see and change what: the two-user sweep, drafts, direct calls to a service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import orjson
import pytest
from cms.content.v1 import content_pb2 as pb
from cms.content.v1 import content_pb2_grpc

from tests.e2e.auth_helpers import parts
from tests.e2e.conftest import Stack, User


@pytest.fixture
def posts(stack: Stack) -> str:
    name = f"sweep_{uuid.uuid4().hex[:8]}"
    reply = stack.client.post("/api/collections", json={"name": name})
    assert reply.status_code == 201
    return name


def _item(stack: Stack, item_id: str) -> dict[str, Any]:
    reply = stack.client.get(f"/api/content/{item_id}")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()["data"]
    return body


def test_two_user_sweep(stack: Stack, posts: str) -> None:
    a, b = stack.user("author"), stack.user("author")
    created = a.client.post("/api/content", json={"collection": posts, "title": "A's draft"})
    assert created.status_code == 201, created.text
    draft = created.json()["data"]
    assert draft["author_id"] == a.id and draft["status"] == "draft"
    published = stack.client.post(
        "/api/content", json={"collection": posts, "title": "Live", "status": "published"}
    ).json()["data"]
    before = _item(stack, draft["id"])

    # B, another author: A's draft does not exist for them; published items do.
    assert b.client.get(f"/api/content/{draft['id']}").status_code == 404
    assert b.client.patch(f"/api/content/{draft['id']}", json={"title": "B"}).status_code == 404
    assert b.client.delete(f"/api/content/{draft['id']}").status_code == 404
    assert b.client.get(f"/api/content/{published['id']}").status_code == 200
    assert b.client.patch(f"/api/content/{published['id']}", json={"title": "B"}).status_code == 403
    assert b.client.delete(f"/api/content/{published['id']}").status_code == 403
    listed = {i["id"] for i in b.client.get(f"/api/collections/{posts}/content").json()["data"]}
    assert listed == {published["id"]}

    # Anonymous: published only, never a draft, whatever the query asks.
    assert stack.anon.get(f"/api/content/{draft['id']}").status_code == 404
    anon_list = stack.anon.get(f"/api/collections/{posts}/content?meta=total").json()
    assert [i["id"] for i in anon_list["data"]] == [published["id"]]
    assert anon_list["meta"]["total"] == 1
    assert stack.anon.get(f"/api/content?collection={posts}&status=draft").status_code == 401
    assert stack.anon.patch(f"/api/content/{draft['id']}", json={"title": "x"}).status_code == 401
    assert stack.anon.delete(f"/api/content/{published['id']}").status_code == 401

    # A: own draft yes; publishing needs content.publish, which authors lack.
    assert a.client.get(f"/api/content/{draft['id']}").status_code == 200
    assert (
        a.client.patch(f"/api/content/{draft['id']}", json={"status": "published"}).status_code
        == 403
    )
    assert (
        a.client.post(
            "/api/content", json={"collection": posts, "title": "x", "status": "published"}
        ).status_code
        == 403
    )

    # A viewer reads drafts but changes nothing.
    viewer = stack.user("viewer")
    assert viewer.client.get(f"/api/content/{draft['id']}").status_code == 200
    assert (
        viewer.client.patch(f"/api/content/{draft['id']}", json={"title": "v"}).status_code == 403
    )
    assert viewer.client.delete(f"/api/content/{draft['id']}").status_code == 403
    assert (
        viewer.client.post("/api/content", json={"collection": posts, "title": "v"}).status_code
        == 403
    )
    assert viewer.client.post("/api/collections", json={"name": "nope_v"}).status_code == 403

    # Denied requests changed nothing.
    assert _item(stack, draft["id"]) == before
    assert _item(stack, published["id"])["title"] == "Live"

    # An editor may change and publish anyone's item; A may still change their own.
    editor = stack.user("editor")
    assert (
        editor.client.patch(f"/api/content/{draft['id']}", json={"title": "E"}).status_code == 200
    )
    assert a.client.patch(f"/api/content/{draft['id']}", json={"title": "A2"}).status_code == 200
    assert (
        editor.client.patch(f"/api/content/{draft['id']}", json={"status": "published"}).status_code
        == 200
    )
    assert stack.anon.get(f"/api/content/{draft['id']}").status_code == 200
    # Once published, it is the editors' to change or delete, not its author's.
    assert a.client.delete(f"/api/content/{draft['id']}").status_code == 403
    assert editor.client.delete(f"/api/content/{draft['id']}").status_code == 200


def test_an_api_token_acts_as_its_creator_for_ownership(stack: Stack, posts: str) -> None:
    author: User = stack.user("author")
    token = author.client.post("/api/tokens", json={"name": "ci"}).json()["data"]["token"]
    headers = {"authorization": f"Bearer {token}"}
    made = stack.anon.post(
        "/api/content", headers=headers, json={"collection": posts, "title": "by program"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["data"]["author_id"] == author.id


def _content_target(stack: Stack) -> str:
    return f"127.0.0.1:{stack.content.env['HERON_CONTENT_GRPC_PORT']}"


def test_direct_calls_to_the_content_service_verify_credentials(stack: Stack, posts: str) -> None:
    """Reaching the service without the gateway gives no more than the gateway would."""
    draft = stack.client.post("/api/content", json={"collection": posts, "title": "hidden"})
    draft_id = draft.json()["data"]["id"]
    admin_token = str(stack.client.headers["authorization"]).split(" ", 1)[1]
    _header, claims, _ = parts(admin_token)

    async def run() -> None:
        async with grpc.aio.insecure_channel(_content_target(stack)) as channel:
            stub = content_pb2_grpc.ContentServiceStub(channel)
            # No credentials: anonymous, so published items only and no writes.
            listing = await stub.ListItems(pb.ListItemsRequest(collection=posts), timeout=5)
            assert draft_id not in {i.id for i in listing.items}
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.GetItem(pb.GetItemRequest(id=draft_id), timeout=5)
            assert denied.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.CreateItem(
                    pb.CreateItemRequest(collection=posts, title="direct"), timeout=5
                )
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # A claimed identity without a valid signature is refused, not trusted.
            forged = admin_token.rsplit(".", 1)[0] + ".AAAA"
            for metadata in (
                (("authorization", f"Bearer {forged}"),),
                (("authorization", "Basic YWRtaW46YWRtaW4="),),
                (("x-user-id", claims["sub"]), ("x-role", "admin")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as denied:
                    await stub.DeleteItem(
                        pb.DeleteItemRequest(id=draft_id), timeout=5, metadata=metadata
                    )
                assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # With the admin's real token it works.
            got = await stub.GetItem(
                pb.GetItemRequest(id=draft_id),
                timeout=5,
                metadata=(("authorization", f"Bearer {admin_token}"),),
            )
            assert orjson.loads(got.data_json or b"{}") == {}

    asyncio.run(run())
    assert stack.client.get(f"/api/content/{draft_id}").status_code == 200
