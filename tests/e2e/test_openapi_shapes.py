"""What the routes send is what the OpenAPI document says they send: each answer below, from
the real stack, validates against the schema documented for its route and status. The shapes
are written once per layer (the service's message, the gateway's renderer, the documented
model); this keeps the documented one from drifting from the rendered one, quickly and
deterministically (the schemathesis run checks the same, over generated requests)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.e2e.conftest import Stack


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    reply = stack.anon.get("/openapi.json")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def _check(document: dict[str, Any], template: str, reply: httpx.Response) -> None:
    operation = document["paths"][template][reply.request.method.lower()]
    documented = operation["responses"].get(str(reply.status_code))
    assert documented is not None, f"{template}: {reply.status_code} is not documented"
    schema = documented["content"]["application/json"]["schema"]
    # The answer's schema, with the document's components to resolve `$ref`s against.
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(reply.json())]
    assert not errors, f"{reply.request.method} {template} {reply.status_code}: {errors[:5]}"


def test_answers_validate_against_their_documented_schemas(
    stack: Stack, document: dict[str, Any]
) -> None:
    c = stack.client
    name = f"shapes_{uuid.uuid4().hex[:8]}"
    created_collection = c.post("/api/collections", json={"name": name, "display_name": "S"})
    _check(document, "/api/collections", created_collection)
    item = c.post(
        "/api/content",
        json={"collection": name, "title": "Shape", "data": {}, "status": "published"},
    )
    _check(document, "/api/content", item)
    item_id = item.json()["data"]["id"]
    viewer = stack.user("viewer")
    token = c.post("/api/tokens", json={"name": "shapes"})
    checks = [
        ("/api/collections", c.get("/api/collections")),
        ("/api/collections/{name}", c.get(f"/api/collections/{name}")),
        ("/api/collections/{name}/content", c.get(f"/api/collections/{name}/content")),
        ("/api/content", c.get("/api/content", params={"collection": name})),
        ("/api/content", stack.anon.get("/api/content", params={"collection": "nope"})),
        ("/api/content/{item_id}", c.get(f"/api/content/{item_id}")),
        ("/api/content/{item_id}", c.patch(f"/api/content/{item_id}", json={"title": "S2"})),
        ("/api/content/{item_id}", stack.anon.get(f"/api/content/{uuid.uuid4()}")),
        ("/auth/me", viewer.client.get("/auth/me")),
        ("/auth/me", viewer.client.patch("/auth/me", json={"firstName": "Vi"})),
        ("/auth/me", stack.anon.get("/auth/me")),
        ("/api/users", c.get("/api/users")),
        ("/api/users/{user_id}", c.get(f"/api/users/{viewer.id}")),
        ("/api/roles", c.get("/api/roles")),
        ("/api/tokens", token),
        ("/api/tokens", c.get("/api/tokens")),
        ("/api/health", stack.anon.get("/api/health")),
        ("/ready", stack.anon.get("/ready")),
        ("/api/cache/stats", c.get("/api/cache/stats")),
        ("/admin/api/collections", c.get("/admin/api/collections")),
        ("/admin/api/collections/{id}", c.get(f"/admin/api/collections/{name}")),
        ("/admin/cache/stats", c.get("/admin/cache/stats")),
        ("/admin/cache/health", c.get("/admin/cache/health")),
        ("/api/content/{item_id}/revisions", c.get(f"/api/content/{item_id}/revisions")),
        (
            "/api/content/{item_id}/revisions/{version}",
            c.get(f"/api/content/{item_id}/revisions/1"),
        ),
        (
            "/api/content/{item_id}/revisions/{version}/restore",
            c.post(f"/api/content/{item_id}/revisions/1/restore"),
        ),
        ("/api/content/{item_id}", c.delete(f"/api/content/{item_id}")),
        ("/api/collections/{name}", c.delete(f"/api/collections/{name}")),
    ]
    for template, reply in checks:
        _check(document, template, reply)
