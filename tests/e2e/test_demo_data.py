"""The demo-data plugin and `heron seed`, through the gateway: realistic collections, items
with references and users, made as the caller; and the content service's import under it,
all or nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator

import grpc
import orjson
import pytest
from cms.content.v1 import content_pb2 as pb
from cms.content.v1 import content_pb2_grpc

from tests.e2e.conftest import ADMIN_PASSWORD, Stack, start_stack

ITEMS = 2500


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("demo-data"),
        seed=False,
        # Beside the other test process's work, a batch may take more than the default 5 s.
        extra_env={"HERON_GATEWAY_RPC_TIMEOUT_SECONDS": "15"},
    )
    yield running
    running.stop()


def _seed(
    stack: Stack, *args: str, password: str = ADMIN_PASSWORD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heron", "seed", "--url", stack.base_url, *args],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _total(stack: Stack, client_name: str, collection: str, **params: str) -> int:
    client = getattr(stack, client_name)
    reply = client.get(f"/api/collections/{collection}/content", params={"meta": "total", **params})
    assert reply.status_code == 200, reply.text
    return int(reply.json()["meta"]["total"])


def test_heron_seed_fills_heron_with_related_items_and_users(demo: Stack) -> None:
    stack = demo
    stack.sign_in_admin()
    args = ["--items", str(ITEMS), "--seed", "7", "--quiet"]
    done = _seed(stack, *args, "--email", stack.admin_email, "--password-stdin")
    assert done.returncode == 0, done.stderr
    assert f"Seeded {ITEMS} articles" in done.stderr
    assert "collections: categories, authors, articles" in done.stderr
    plugin = stack.client.get("/api/plugins/demo-data").json()["data"]
    assert plugin["status"] == "active"

    # Every article is there for the admin; the public sees the published ones only.
    assert _total(stack, "client", "articles") == ITEMS
    published = _total(stack, "anon", "articles")
    assert 0.5 * ITEMS < published < 0.9 * ITEMS
    assert _total(stack, "client", "articles", status="draft") > 0.1 * ITEMS
    drafts = stack.anon.get("/api/collections/articles/content", params={"status": "draft"})
    # Asking for drafts without being signed in is refused (never an empty list that hides it).
    assert drafts.status_code == 401, drafts.text

    # References point at real categories and authors, and resolve on request.
    listed = stack.client.get(
        "/api/collections/articles/content",
        params={"limit": "20", "include": "data.category,data.author"},
    )
    assert listed.status_code == 200, listed.text
    categories = {
        c["id"] for c in stack.client.get("/api/collections/categories/content").json()["data"]
    }
    assert len(categories) == 8
    for article in listed.json()["data"]:
        data = article["data"]
        assert data["body"].startswith("<p>") and article["title"] and article["slug"]
        category = data["category"]
        assert isinstance(category, dict) and category["id"] in categories, data
        assert isinstance(data["author"], dict) and data["author"]["title"]
    slugs = [
        a["slug"]
        for a in stack.client.get(
            "/api/collections/articles/content", params={"limit": "100"}
        ).json()["data"]
    ]
    assert len(set(slugs)) == len(slugs)

    # Demo users, with the roles they were given.
    users = stack.client.get("/api/users", params={"limit": "100"}).json()["data"]
    demo = sorted(u["role"] for u in users if u["email"].endswith("@demo.example"))
    assert demo == ["author", "author", "editor", "viewer"]

    # Again: more articles, no second set of collections, users, categories or authors.
    again = _seed(
        stack, "--items", "10", "--quiet", "--email", stack.admin_email, "--password-stdin"
    )
    assert again.returncode == 0, again.stderr
    assert "collections: none new; new users: 0" in again.stderr
    assert _total(stack, "client", "articles") == ITEMS + 10
    assert _total(stack, "client", "categories") == 8
    assert _total(stack, "client", "authors") == 12


def test_seeding_needs_its_permission_and_a_sound_request(demo: Stack) -> None:
    stack = demo
    stack.sign_in_admin()
    if stack.client.get("/api/plugins/demo-data").json()["data"]["status"] != "active":
        assert stack.client.post("/api/plugins/demo-data/install").status_code < 300
        assert stack.client.post("/api/plugins/demo-data/activate").status_code < 300
    assert stack.anon.post("/api/plugins/demo-data/seed", json={"items": 1}).status_code == 401
    editor = stack.user("editor")
    refused = editor.client.post("/api/plugins/demo-data/seed", json={"items": 1})
    assert refused.status_code == 403, refused.text
    assert "demo-data.seed" in refused.text
    wrong = _seed(
        stack,
        "--items",
        "1",
        "--quiet",
        "--email",
        editor.email,
        "--password-stdin",
        password="not-the-password-1",
    )
    assert wrong.returncode == 1 and "could not sign in" in wrong.stderr
    too_many = stack.client.post("/api/plugins/demo-data/seed", json={"items": 5000})
    assert too_many.status_code == 400
    assert too_many.json()["details"][0]["field"] == "items"
    unknown = stack.client.post("/api/plugins/demo-data/seed", json={"itemz": 5})
    assert unknown.status_code == 400 and unknown.json()["details"][0]["field"] == "itemz"


def test_an_import_is_all_or_nothing_and_names_the_bad_item(stack: Stack) -> None:
    stack.sign_in_admin()
    name = f"imported_{uuid.uuid4().hex[:8]}"
    made = stack.client.post(
        "/api/collections",
        json={
            "name": name,
            "display_name": "Imported",
            "schema": {
                "type": "object",
                "properties": {
                    "price": {"type": "number", "minimum": 0},
                    "sku": {"type": "string", "unique": True},
                },
            },
        },
    )
    assert made.status_code == 201, made.text
    token = str(stack.client.headers["authorization"]).split(" ", 1)[1]
    target = f"127.0.0.1:{stack.content.env['HERON_CONTENT_GRPC_PORT']}"

    def item(n: int, price: object = 1, sku: str = "") -> pb.NewItem:
        data = {"price": price, "sku": sku or f"sku-{n}"}
        return pb.NewItem(title="Same title", data_json=orjson.dumps(data), status="published")

    async def run() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = content_pb2_grpc.ContentServiceStub(channel)
            auth = (("authorization", f"Bearer {token}"),)

            async def send(items: list[pb.NewItem]) -> pb.ImportItemsResponse:
                request = pb.ImportItemsRequest(collection=name, items=items)
                return await stub.ImportItems(request, timeout=30, metadata=auth)

            bad = [item(n) for n in range(5)]
            bad[3] = item(3, price=-2)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await send(bad)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "items[3]" in (refused.value.details() or "")
            twice = [item(0), item(1, sku="sku-0")]
            with pytest.raises(grpc.aio.AioRpcError) as taken:
                await send(twice)
            assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS, taken.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.ImportItems(
                    pb.ImportItemsRequest(collection=name, items=[item(9)]), timeout=30
                )
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ok = await send([item(n) for n in range(30)])
            assert len(ok.ids) == 30
            # A slug of its own that another item holds: refused, naming the item.
            holder = (await stub.GetItem(pb.GetItemRequest(id=ok.ids[0]), metadata=auth)).slug
            clash = [item(40), item(41)]
            clash[1].slug = holder
            with pytest.raises(grpc.aio.AioRpcError) as held:
                await send(clash)
            assert held.value.code() == grpc.StatusCode.ALREADY_EXISTS
            assert "items[1]" in (held.value.details() or "")

    asyncio.run(run())
    listed = stack.anon.get(f"/api/collections/{name}/content", params={"limit": "100"})
    rows = listed.json()["data"]
    # Only the good import is there, every item with a slug of its own.
    assert len(rows) == 30
    assert len({r["slug"] for r in rows}) == 30
    assert {r["data"]["sku"] for r in rows} == {f"sku-{n}" for n in range(30)}
    revisions = stack.client.get(f"/api/content/{rows[0]['id']}/revisions")
    assert revisions.status_code == 200 and len(revisions.json()["data"]) == 1
