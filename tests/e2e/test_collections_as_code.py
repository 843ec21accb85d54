"""Collections as code: JSON and YAML files in HERON_CONTENT_COLLECTIONS_DIR, applied at start,
read-only through the API, never deleting data, idempotent across restarts and across two
content processes starting at once on one PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port, throwaway_database
from tests.e2e.conftest import Service, Stack, start_stack
from tests.e2e.test_content_api import assert_error

ARTICLES = {
    "display_name": "Articles",
    "description": "What the newsroom publishes",
    "schema": {"properties": {"body": {"type": "richtext", "required": True}}},
}
AUTHORS_YAML = """\
name: authors
display_name: Authors
schema:
  properties:
    name: {type: string, required: true}
    bio: {type: text}
"""


def _write(directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "articles.json").write_text(json.dumps(ARTICLES))
    (directory / "authors.yaml").write_text(AUTHORS_YAML)
    (directory / "broken.yaml").write_text("name: [unclosed\n")
    (directory / "README.txt").write_text("not a definition")


def _restart_content(stack: Stack) -> None:
    content = stack.backends["content"]
    content.stop()
    content.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{stack.base_url}/ready", timeout=5).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the content service did not come back")


def _collection(stack: Stack, name: str) -> dict[str, Any]:
    reply = stack.client.get(f"/api/collections/{name}", headers={"cache-control": "no-cache"})
    assert reply.status_code == 200, reply.text
    collection: dict[str, Any] = reply.json()["data"]
    return collection


def test_files_define_read_only_collections(tmp_path: Path) -> None:
    directory = tmp_path / "collections"
    _write(directory)
    stack = start_stack(
        tmp_path, seed=False, extra_env={"HERON_CONTENT_COLLECTIONS_DIR": str(directory)}
    )
    try:
        articles = _collection(stack, "articles")
        assert articles["managed"] is True and articles["source"] == "articles.json"
        assert articles["display_name"] == "Articles"
        authors = _collection(stack, "authors")
        assert authors["source"] == "authors.yaml"
        assert authors["schema"]["required"] == ["name"]
        names = {c["name"] for c in stack.client.get("/api/collections").json()["data"]}
        assert "broken" not in names  # a file that does not parse is logged, not applied
        assert "collection file not applied" in stack.logs()

        refused = stack.client.patch("/api/collections/articles", json={"displayName": "X"})
        assert "articles.json" in assert_error(refused, 403, "permission_denied")["error"]
        deleted = stack.client.delete("/api/collections/articles")
        assert_error(deleted, 403, "permission_denied")
        item = stack.client.post(
            "/api/content",
            json={"collection": "articles", "title": "First", "data": {"body": "<p>x</p>"}},
        )
        assert item.status_code == 201, item.text  # items are written as any others

        # Unchanged files: a restart changes nothing.
        _restart_content(stack)
        assert _collection(stack, "articles")["version"] == articles["version"]

        # A field added in the file arrives at the next start; the data stays.
        changed = {
            **ARTICLES,
            "schema": {
                "properties": {
                    "body": {"type": "richtext", "required": True},
                    "summary": {"type": "text"},
                }
            },
        }
        (directory / "articles.json").write_text(json.dumps(changed))
        _restart_content(stack)
        now = _collection(stack, "articles")
        assert "summary" in now["schema"]["properties"]
        assert now["version"] == articles["version"] + 1
        # A file that would drop data is not applied: the collection keeps its schema.
        dropped = {**ARTICLES, "schema": {"properties": {"summary": {"type": "text"}}}}
        (directory / "articles.json").write_text(json.dumps(dropped))
        _restart_content(stack)
        assert "body" in _collection(stack, "articles")["schema"]["properties"]
        listed = stack.client.get("/api/collections/articles/content").json()["data"]
        assert [i["data"]["body"] for i in listed] == ["<p>x</p>"]

        # A file that goes leaves its collection, editable again.
        (directory / "authors.yaml").unlink()
        _restart_content(stack)
        released = _collection(stack, "authors")
        assert released["source"] is None and released["managed"] is False
        assert stack.client.patch(
            "/api/collections/authors", json={"displayName": "People"}
        ).is_success
    finally:
        stack.stop()


def test_two_replicas_starting_at_once_make_one_collection(
    tmp_path: Path, postgres_server_url: str
) -> None:
    directory = tmp_path / "collections"
    _write(directory)
    env = {"HERON_CONTENT_COLLECTIONS_DIR": str(directory)}
    with (
        throwaway_database(postgres_server_url) as content_url,
        throwaway_database(postgres_server_url) as auth_url,
    ):
        # The first replica makes the store without the files; then two start together.
        stack = start_stack(tmp_path, content_url, auth_database_url=auth_url, seed=False)
        try:
            first = stack.backends["content"]
            first.stop()
            first.env.update(env)
            second = Service(
                "content-2",
                [sys.executable, "-m", "heron_content"],
                {**first.env, "HERON_CONTENT_GRPC_PORT": str(free_port())},
                tmp_path / "content-2.log",
            )
            first.start()
            second.start()
            try:
                deadline = time.monotonic() + 30
                while httpx.get(f"{stack.base_url}/ready", timeout=5).status_code != 200:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                time.sleep(2)  # the second replica's sync, too
                listed = stack.client.get(
                    "/api/collections", headers={"cache-control": "no-cache"}
                ).json()["data"]
                names = sorted(c["name"] for c in listed)
                assert names == ["articles", "authors"]
                assert all(c["version"] == 1 for c in listed)  # made once, never rewritten
                logs = (tmp_path / "content.log").read_text() + (
                    tmp_path / "content-2.log"
                ).read_text()
                assert logs.count("collection created from its file") == 2
                assert logs.count("collection file not applied") == 2  # broken.yaml, by each
            finally:
                second.stop()
        finally:
            stack.stop()
