"""The plugin registry through the gateway: plugins installed into the environment are found
through their entry points (a broken one is listed with its reason), and go through install →
activate ⇄ deactivate → uninstall with their dependencies checked, settings validated (secrets
never returned) and every change logged."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.conftest import throwaway_database
from tests.e2e.conftest import Stack, content_sql, start_stack

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "heron_test_plugins"
ENTRY_POINTS = """\
[heron.plugins]
tester = heron_test_plugins:tester
needs-tester = heron_test_plugins:needs_tester
needs-new-tester = heron_test_plugins:needs_new_tester
bad-manifest = heron_test_plugins:bad_manifest
broken = heron_test_plugins.broken:plugin
sleeper = heron_test_plugins:sleeper
skipper = heron_test_plugins:skipper
"""


def install_test_plugins(site: Path) -> Path:
    """The test plugins installed into `site` as an installer lays a package out: the code,
    and its `.dist-info` with the entry points the plugins service looks for."""
    shutil.copytree(PACKAGE, site / PACKAGE.name)
    info = site / "heron_test_plugins-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: heron-test-plugins\nVersion: 1.0.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("plugins")
    site = install_test_plugins(tmp_path_factory.mktemp("site"))
    running = start_stack(tmp, seed=False, extra_env={"PYTHONPATH": str(site)})
    yield running
    running.stop()


def _plugins(stack: Stack) -> dict[str, dict[str, Any]]:
    reply = stack.client.get("/api/plugins")
    assert reply.status_code == 200, reply.text
    return {p["name"]: p for p in reply.json()["data"]}


def _act(stack: Stack, name: str, action: str) -> Any:
    return stack.client.post(f"/api/plugins/{name}/{action}")


def test_the_registry_lists_what_the_environment_declares(stack: Stack) -> None:
    found = _plugins(stack)
    assert {"cache", "tester", "needs-tester", "broken", "bad-manifest"} <= set(found)
    assert (found["cache"]["status"], found["cache"]["core"]) == ("active", True)
    tester = found["tester"]
    assert (tester["status"], tester["version"], tester["installed_at"]) == (
        "available",
        "1.2.0",
        None,
    )
    assert tester["routes"] == [
        {"method": "GET", "path": "/hello", "permission": "tester.use"},
        {"method": "POST", "path": "/echo/{what}", "permission": "public"},
        {"method": "GET", "path": "/events", "permission": "tester.use"},
    ]
    assert tester["permissions"] == ["tester.use"]
    assert tester["settings_schema"]["properties"]["api_key"]["writeOnly"] is True
    assert found["needs-tester"]["dependencies"] == {"tester": ">=1.0,<2"}
    broken = found["broken"]
    assert broken["status"] == "error" and "failed to import" in broken["error"]
    assert "broken on purpose" in broken["error"]
    bad = found["bad-manifest"]
    assert bad["status"] == "error" and "manifest is invalid" in bad["error"]
    assert "version" in bad["error"]
    # A plugin that cannot load cannot be installed; one that does not exist is a 404.
    refused = _act(stack, "broken", "install")
    assert refused.status_code == 409 and "broken on purpose" in refused.json()["error"]
    assert _act(stack, "nowhere", "install").status_code == 404
    assert stack.client.get("/api/plugins/nowhere").status_code == 404

    # Reading needs plugins.read, changing plugins.manage.
    assert stack.anon.get("/api/plugins").status_code == 401
    viewer = stack.user("viewer")
    assert viewer.client.get("/api/plugins").status_code == 403
    assert viewer.client.post("/api/plugins/tester/install").status_code == 403
    assert _plugins(stack)["tester"]["status"] == "available"


def test_lifecycle_dependencies_settings_and_activity(stack: Stack) -> None:
    assert _act(stack, "tester", "activate").status_code == 409  # install it first
    installed = _act(stack, "tester", "install")
    assert installed.status_code == 200, installed.text
    assert installed.json()["data"]["status"] == "inactive"
    assert _act(stack, "tester", "install").status_code == 409
    url = "/api/plugins/tester/settings"
    shown = stack.client.get(url).json()["data"]
    assert (shown["settings"], shown["secrets_set"]) == ({"greeting": "hello", "retries": 3}, [])

    # Settings are checked against the plugin's schema, every write.
    bad = stack.client.put(url, json={"greeting": "hi", "retries": 99})
    assert bad.status_code == 400
    assert [d["field"] for d in bad.json()["details"]] == ["settings.retries"]
    # Not hex: the answer's random request id must not contain it by chance.
    short = stack.client.put(url, json={"api_key": "xyz"})
    assert short.status_code == 400 and "xyz" not in short.text  # a secret is never echoed
    assert stack.client.put(url, json={"nope": 1}).status_code == 400
    saved = stack.client.put(url, json={"greeting": "hi", "retries": 5, "api_key": "s3cret-key"})
    assert saved.status_code == 200, saved.text
    data = saved.json()["data"]
    assert (data["settings"], data["secrets_set"]) == (
        {"greeting": "hi", "retries": 5},
        ["api_key"],
    )
    assert "s3cret-key" not in saved.text
    # A secret left out keeps its value.
    kept = stack.client.put(url, json={"greeting": "hey", "retries": 5}).json()["data"]
    assert kept["secrets_set"] == ["api_key"]
    assert "s3cret-key" not in stack.client.get(url).text

    # Dependencies: activation needs them active, in range; deactivation, no active dependant.
    assert _act(stack, "needs-tester", "install").status_code == 200
    early = _act(stack, "needs-tester", "activate")
    assert early.status_code == 409 and "tester" in early.json()["error"]
    assert _act(stack, "tester", "activate").json()["data"]["status"] == "active"
    assert _act(stack, "needs-tester", "activate").json()["data"]["status"] == "active"
    assert _act(stack, "needs-new-tester", "install").status_code == 200
    too_old = _act(stack, "needs-new-tester", "activate")
    assert too_old.status_code == 409 and "1.2.0 is installed" in too_old.json()["error"]
    needed = _act(stack, "tester", "deactivate")
    assert needed.status_code == 409 and "needs-tester" in needed.json()["error"]
    assert _act(stack, "tester", "uninstall").status_code == 409  # active: deactivate first
    assert _act(stack, "needs-tester", "deactivate").json()["data"]["status"] == "inactive"
    assert _act(stack, "tester", "deactivate").json()["data"]["status"] == "inactive"
    assert _act(stack, "cache", "deactivate").status_code == 409  # core: always active

    # Every change is logged: who, when, what (setting names, never values).
    log = stack.client.get("/api/plugins/tester/activity").json()["data"]
    actions = [e["action"] for e in log]
    assert actions[:2] == ["deactivated", "activated"]
    assert actions.count("settings_changed") == 2 and actions[-1] == "installed"
    changed = [e for e in log if e["action"] == "settings_changed"]
    assert "api_key" in changed[-1]["detail"] and "s3cret" not in str(log)
    assert {e["actor"] for e in log} == {stack.client.get("/auth/me").json()["user"]["id"]}

    # Uninstall removes its settings: installed again, it starts from its defaults.
    assert _act(stack, "tester", "uninstall").json()["data"]["status"] == "available"
    assert stack.client.get(url).status_code == 409
    assert _act(stack, "tester", "install").status_code == 200
    again = stack.client.get(url).json()["data"]
    assert (again["settings"], again["secrets_set"]) == ({"greeting": "hello", "retries": 3}, [])


def test_state_survives_a_restart_of_the_plugins_service(stack: Stack) -> None:
    if _plugins(stack)["needs-tester"]["status"] == "available":
        assert _act(stack, "needs-tester", "install").status_code == 200
    if _plugins(stack)["tester"]["status"] == "available":
        assert _act(stack, "tester", "install").status_code == 200
    assert _act(stack, "tester", "activate").status_code == 200
    before = _plugins(stack)
    service = stack.backends["plugins"]
    service.stop()
    service.start()
    stack.wait_ready()
    after = _plugins(stack)
    assert {n: p["status"] for n, p in after.items()} == {n: p["status"] for n, p in before.items()}
    assert after["tester"]["status"] == "active" and after["cache"]["status"] == "active"


def _ensure_active(stack: Stack, name: str) -> None:
    if _plugins(stack)[name]["status"] == "available":
        assert _act(stack, name, "install").status_code == 200
    reply = _act(stack, name, "activate")
    assert reply.status_code == 200, reply.text


def _eventually(check: Any, seconds: float = 6) -> Any:
    """What `check` returns once truthy (active plugins reach every process within ~1 s)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_hooks_and_routes_of_active_plugins(stack: Stack) -> None:
    for name in ("tester", "sleeper", "skipper"):
        _ensure_active(stack, name)
    collection = f"hooked_{uuid.uuid4().hex[:6]}"
    schema = {"properties": {"count": {"type": "integer"}}}
    assert stack.client.post(
        "/api/collections", json={"name": collection, "schema": schema}
    ).is_success

    def create(title: str) -> Any:
        return stack.client.post(
            "/api/content", json={"collection": collection, "title": title, "data": {"count": 1}}
        )

    def stored() -> list[str]:
        page = stack.client.get(f"/api/collections/{collection}/content", params={"limit": 100})
        return sorted(i["title"] for i in page.json()["data"])

    # A before hook changes the item (its result is checked again, as any item is)...
    made = _eventually(
        lambda: (
            (r := create("Hello")).status_code == 201
            and r.json()["data"]["title"].endswith(" (checked)")
            and r
        )
    )
    assert made and made.status_code == 201
    broken = create("Break the data")
    assert broken.status_code == 400 and broken.json()["details"][0]["field"] == "data.count"
    # ... or refuses it, with its reason, naming the plugin; nothing is written either way.
    before = stored()
    vetoed = create("Veto this")
    assert vetoed.status_code == 409
    assert "tester" in vetoed.json()["error"] and "Veto are refused" in vetoed.json()["error"]
    slow = create("a slow one")
    assert slow.status_code == 503 and "sleeper" in slow.json()["error"]
    assert "200 ms" in slow.json()["error"]
    assert stored() == before
    # A failing hook whose manifest says `skip` is skipped (every create above ran it), counted.
    skipper = stack.client.get("/api/plugins/skipper").json()["data"]
    assert skipper["stats"]["content:beforeCreate"]["failures"] >= 3
    sleeper = stack.client.get("/api/plugins/sleeper").json()["data"]
    assert sleeper["stats"]["content:beforeCreate"]["timeouts"] >= 1
    # ... and in the gateway's /metrics.
    scraped = stack.client.get("/metrics").text
    failures = re.search(
        r'heron_plugin_hook_failures_total\{hook="content:beforeCreate",plugin="skipper"\} (\S+)',
        scraped,
    )
    assert failures and float(failures.group(1)) >= 3, scraped[-2000:]

    # The media service's before hook: a refused upload stores nothing.
    def upload(name: str) -> Any:
        return stack.client.put(
            f"/api/media/upload/{name}",
            content=b"some words\n",
            headers={"content-type": "text/plain"},
        )

    # (once the media service knows the hook: a probe uploaded before that is stored)
    assert _eventually(lambda: upload("forbidden-probe.txt").status_code == 400)
    refused = upload("forbidden.txt")
    assert refused.status_code == 400
    assert "tester" in refused.json()["error"] and "forbidden" in refused.json()["error"]
    listed = stack.client.get("/api/media", params={"search": "forbidden"}).json()["data"]
    assert "forbidden.txt" not in [m["filename"] for m in listed]
    assert upload("allowed.txt").status_code == 201

    # A plugin's route, with the permission its manifest declares (once the gateway knows it).
    assert _eventually(lambda: stack.client.get("/api/plugins/tester/hello").status_code == 200)
    assert stack.anon.get("/api/plugins/tester/hello").status_code == 401
    viewer = stack.user("viewer").client
    assert viewer.get("/api/plugins/tester/hello").status_code == 403
    # An active plugin's permissions join the role catalogue: an admin may hand them out.
    roles = {r["name"]: r for r in stack.client.get("/api/roles").json()["data"]}
    held = roles["viewer"]["permissions"]
    unknown = stack.client.put("/api/roles/viewer", json={"permissions": [*held, "tester.nope"]})
    assert unknown.status_code == 400 and "tester.nope" in unknown.text
    granted = stack.client.put("/api/roles/viewer", json={"permissions": [*held, "tester.use"]})
    assert granted.status_code == 200, granted.text
    try:
        assert _eventually(lambda: viewer.get("/api/plugins/tester/hello").status_code == 200)
    finally:
        assert stack.client.put("/api/roles/viewer", json={"permissions": held}).is_success
    assert _eventually(lambda: viewer.get("/api/plugins/tester/hello").status_code == 403)
    hello = stack.client.get("/api/plugins/tester/hello", params={"who": "x"})
    assert hello.status_code == 200, hello.text
    me = stack.client.get("/auth/me").json()["user"]["id"]
    assert hello.json() == {"greeting": "hello", "user": me, "who": "x"}
    echoed = stack.anon.post("/api/plugins/tester/echo/abc", json={"a": 1})
    assert (echoed.status_code, echoed.json()) == (201, {"echo": {"a": 1}})
    assert stack.client.get("/api/plugins/tester/nope").status_code == 404
    # The registry's own routes of a plugin are never a plugin route.
    allowed = stack.client.options("/api/plugins/tester/settings").headers["allow"]
    assert allowed == "GET, HEAD, PUT, OPTIONS"
    described = stack.anon.get("/openapi.json").json()["paths"]
    assert described["/api/plugins/tester/hello"]["get"]["description"].endswith("`tester.use`.")
    assert "post" in described["/api/plugins/tester/echo/{what}"]

    # Deactivated: its routes answer 404 and its hook is no longer called.
    for name in ("tester", "sleeper", "skipper"):
        assert _act(stack, name, "deactivate").status_code == 200
    assert _eventually(lambda: stack.client.get("/api/plugins/tester/hello").status_code == 404)
    assert _eventually(
        lambda: "/api/plugins/tester/hello" not in stack.anon.get("/openapi.json").json()["paths"]
    )
    plain = _eventually(lambda: (r := create("Veto later")).status_code == 201 and r)
    assert plain and plain.json()["data"]["title"] == "Veto later"
    assert _eventually(lambda: upload("forbidden-no-more.txt").status_code == 201)


@pytest.fixture(params=["sqlite", "postgres"])
def hooked_stack(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A private stack with the test plugins, on each database (its processes get killed)."""
    env = {"PYTHONPATH": str(install_test_plugins(tmp_path_factory.mktemp("site")))}
    if request.param == "sqlite":
        running = start_stack(tmp_path, seed=False, extra_env=env)
        yield running
        running.stop()
        return
    server = request.getfixturevalue("postgres_server_url")
    with (
        throwaway_database(server) as content_url,
        throwaway_database(server) as auth_url,
        throwaway_database(server) as media_url,
        throwaway_database(server) as plugins_url,
    ):
        running = start_stack(
            tmp_path,
            content_url,
            seed=False,
            auth_database_url=auth_url,
            media_database_url=media_url,
            plugins_database_url=plugins_url,
            extra_env=env,
        )
        yield running
        running.stop()


def _seen(stack: Stack, event: str = "") -> list[dict[str, Any]]:
    """The after-events the tester plugin's handlers received (in the plugins service)."""
    reply = stack.client.get("/api/plugins/tester/events", params={"event": event})
    return reply.json() if reply.status_code == 200 else []


def _of(stack: Stack, subject: str) -> list[tuple[str, int]]:
    return [
        (p["event"], p["item"]["version"])
        for p in _seen(stack)
        if p.get("item", {}).get("id") == subject
    ]


def test_after_hooks_fire_once_in_order_and_survive_a_killed_service(
    hooked_stack: Stack,
) -> None:
    stack = hooked_stack
    for name in ("tester", "sleeper", "skipper"):
        _ensure_active(stack, name)
    probe = f"probe_{uuid.uuid4().hex[:6]}"
    assert stack.client.post("/api/collections", json={"name": probe, "schema": {}}).is_success
    collection = f"after_{uuid.uuid4().hex[:6]}"

    def create(title: str, status: str = "draft") -> dict[str, Any]:
        reply = stack.client.post(
            "/api/content", json={"collection": collection, "title": title, "status": status}
        )
        assert reply.status_code == 201, reply.text
        return reply.json()["data"]

    def update(item_id: str, **values: Any) -> Any:
        return stack.client.put(f"/api/content/{item_id}", json=values)

    # Once the content service knows the plugins' hooks (the before hook shows it)...
    def probed() -> bool:
        reply = stack.client.post("/api/content", json={"collection": probe, "title": "p"})
        assert reply.status_code == 201, reply.text
        return bool(reply.json()["data"]["title"] == "p (checked)")

    assert _eventually(probed)
    # ... a change of a collection is an event,
    assert stack.client.post("/api/collections", json={"name": collection, "schema": {}}).is_success
    changed = _eventually(
        lambda: [
            p
            for p in _seen(stack, "collection:afterChange")
            if p["collection"]["name"] == collection
        ]
    )
    assert changed and changed[0]["change"] == "created" and changed[0]["actor"]["role"] == "admin"

    # Every write of an item is an event, delivered in the order of the writes.
    item = create("Ordered")
    for n in range(5):
        assert update(item["id"], title=f"Ordered {n}").status_code == 200
    assert update(item["id"], status="published").status_code == 200
    assert update(item["id"], status="draft").status_code == 200
    assert stack.client.delete(f"/api/content/{item['id']}").status_code == 200
    expected = [
        ("content:afterCreate", 1),
        *(("content:afterUpdate", v) for v in range(2, 7)),
        ("content:afterUpdate", 7),
        ("content:afterPublish", 7),
        ("content:afterUpdate", 8),
        ("content:afterUnpublish", 8),
        ("content:afterDelete", 8),
    ]
    assert _eventually(lambda: _of(stack, item["id"]) == expected, 15), _of(stack, item["id"])
    created = next(p for p in _seen(stack, "content:afterCreate") if p["item"]["id"] == item["id"])
    assert created["item"]["title"] == "Ordered (checked)" and created["source"] == "content"
    assert created["actor"]["role"] == "admin" and created["request_id"]

    # A write that was refused leaves no event.
    vetoed = stack.client.post("/api/content", json={"collection": collection, "title": "Veto"})
    assert vetoed.status_code == 409
    kept = create("Kept")
    bad = update(kept["id"], title="")
    assert bad.status_code == 400
    assert update(kept["id"], title="Kept again").status_code == 200
    assert _eventually(
        lambda: _of(stack, kept["id"]) == [("content:afterCreate", 1), ("content:afterUpdate", 2)]
    )
    assert not [p for p in _seen(stack) if p.get("item", {}).get("title", "").startswith("Veto")]

    # An after hook that sleeps past its deadline, or raises, never holds up or fails a write;
    # it is bounded and counted, and the other plugins' handlers still run.
    started = time.monotonic()
    slow = create("a lazy one")
    assert time.monotonic() - started < 1.0  # the sleeper's handler takes 3 s (bounded at 1 s)
    assert update(slow["id"], title="still lazy").status_code == 200
    assert _eventually(lambda: len(_of(stack, slow["id"])) == 2, 10)
    sleeper = stack.client.get("/api/plugins/sleeper").json()["data"]["stats"]
    assert sleeper["content:afterCreate"]["timeouts"] >= 1
    skipper = stack.client.get("/api/plugins/skipper").json()["data"]["stats"]
    assert skipper["content:afterUpdate"]["failures"] >= 1

    # Files and accounts too.
    uploaded = stack.client.put(
        "/api/media/upload/after.txt", content=b"words\n", headers={"content-type": "text/plain"}
    )
    assert uploaded.status_code == 201, uploaded.text
    media_id = uploaded.json()["data"]["id"]
    assert stack.client.delete(f"/api/media/{media_id}").status_code in (200, 204)
    assert _eventually(
        lambda: (
            [p["event"] for p in _seen(stack) if p.get("media", {}).get("id") == media_id]
            == ["media:afterUpload", "media:afterDelete"]
        ),
        10,
    )
    viewer = stack.user("viewer")
    registered = _eventually(
        lambda: [
            p for p in _seen(stack, "auth:afterRegister") if p["user"]["email"] == viewer.email
        ],
        10,
    )
    assert registered and "password_hash" not in registered[0]["user"]
    assert _eventually(
        lambda: [p for p in _seen(stack, "auth:afterLogin") if p["user"]["email"] == viewer.email],
        10,
    )
    ids = [p["id"] for p in _seen(stack)]
    assert len(ids) == len(set(ids))

    # The plugins service away: writes go on; the content service killed right after a
    # committed write; both back: the event is delivered, once.
    survivor = create("Survivor")
    assert _eventually(lambda: len(_of(stack, survivor["id"])) == 1)
    stack.backends["plugins"].stop()
    assert update(survivor["id"], title="Survivor, changed").status_code == 200
    stack.backends["content"].kill()
    stack.backends["plugins"].start()
    stack.backends["content"].start()
    stack.wait_ready()
    assert _eventually(lambda: _of(stack, survivor["id"]) == [("content:afterUpdate", 2)], 15), _of(
        stack, survivor["id"]
    )
    time.sleep(1.5)  # a second relay pass delivers nothing again
    assert _of(stack, survivor["id"]) == [("content:afterUpdate", 2)]
    assert content_sql(stack, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_the_workflow_plugin_decides_who_moves_an_item_where(stack: Stack) -> None:
    _ensure_active(stack, "workflow")
    collection = f"flow_{uuid.uuid4().hex[:6]}"
    assert stack.client.post("/api/collections", json={"name": collection, "schema": {}}).is_success
    author, editor = stack.user("author").client, stack.user("editor").client
    try:
        # An editor may not create an item published at once (draft → published: admins)...
        refused = _eventually(
            lambda: (
                (
                    r := editor.post(
                        "/api/content",
                        json={"collection": collection, "title": "Early", "status": "published"},
                    )
                ).status_code
                == 400
                and r
            )
        )
        assert refused and "workflow" in refused.json()["error"]
        made = author.post("/api/content", json={"collection": collection, "title": "Piece"})
        assert made.status_code == 201, made.text
        item = made.json()["data"]["id"]
        # ... but asks for review; an editor may not skip review, and publishes from it.
        assert author.patch(f"/api/content/{item}", json={"status": "review"}).status_code == 200
        back = author.patch(f"/api/content/{item}", json={"status": "draft"})
        assert back.status_code == 200
        skipped = _eventually(
            lambda: (r := editor.post(f"/api/content/{item}/publish")).status_code == 400 and r
        )
        assert skipped, "the workflow never refused draft → published for an editor"
        error = skipped.json()["error"]
        assert "workflow" in error and "from draft to published" in error and "admin" in error
        assert editor.patch(f"/api/content/{item}", json={"status": "review"}).status_code == 200

        # A move may need a comment (a reviewer's note).
        rules = stack.client.get("/api/plugins/workflow/settings").json()["data"]["settings"]
        for rule in rules["transitions"]:
            if (rule["from"], rule["to"]) == ("review", "published"):
                rule["comment_required"] = True
        assert stack.client.put("/api/plugins/workflow/settings", json=rules).status_code == 200
        silent = _eventually(
            lambda: (r := editor.post(f"/api/content/{item}/publish")).status_code == 400 and r
        )
        assert silent and "needs a comment" in silent.json()["error"]
        noted = editor.post(f"/api/content/{item}/publish", json={"comment": "Checked the facts."})
        assert noted.status_code == 200, noted.text
        assert noted.json()["data"]["status"] == "published"
        bad = stack.client.put(
            "/api/plugins/workflow/settings",
            json={"transitions": [{"from": "nowhere", "to": "draft", "roles": []}]},
        )
        assert bad.status_code == 400
    finally:
        assert _act(stack, "workflow", "deactivate").status_code == 200


def test_the_seo_plugin_fills_meta_fields_and_serves_a_sitemap_of_published_items(
    stack: Stack,
) -> None:
    _ensure_active(stack, "seo")
    collection = f"seo_{uuid.uuid4().hex[:6]}"
    schema = {
        "properties": {
            "body": {"type": "string"},
            "meta_title": {"type": "string"},
            "meta_description": {"type": "string"},
        }
    }
    assert stack.client.post(
        "/api/collections", json={"name": collection, "schema": schema}
    ).is_success
    settings = {
        "base_url": "https://example.com",
        "collections": [{"name": collection, "path": "/blog/{slug}", "changefreq": "weekly"}],
        "meta": [
            {
                "collection": collection,
                "title_field": "meta_title",
                "description_field": "meta_description",
                "source_field": "body",
            }
        ],
    }
    assert stack.client.put("/api/plugins/seo/settings", json=settings).status_code == 200
    try:
        body = "<p>Herons <b>wait</b> &amp; strike.</p> " + "More words. " * 30

        def create(title: str, status: str, data: dict[str, Any]) -> dict[str, Any]:
            reply = stack.client.post(
                "/api/content",
                json={"collection": collection, "title": title, "status": status, "data": data},
            )
            assert reply.status_code == 201, reply.text
            return dict(reply.json()["data"])

        filled = _eventually(
            lambda: (
                "meta_title" in (made := create("On herons", "published", {"body": body}))["data"]
                and made
            )
        )
        assert filled, "the seo plugin never filled the meta fields"
        description = filled["data"]["meta_description"]
        assert description.startswith("Herons wait & strike. More words.")
        assert len(description) <= 160 and filled["data"]["meta_title"] == "On herons"
        kept = create("Own meta", "published", {"body": body, "meta_title": "Mine"})
        assert kept["data"]["meta_title"] == "Mine"
        draft = create("Not yet", "draft", {"body": body})

        # (once the gateway knows the route: within about a second of the activation)
        answer = _eventually(
            lambda: (r := stack.anon.get("/api/plugins/seo/sitemap.xml")).status_code == 200 and r
        )
        assert answer, stack.anon.get("/api/plugins/seo/sitemap.xml").text
        assert answer.headers["content-type"].startswith("application/xml")
        root = ElementTree.fromstring(answer.content)
        namespace = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
        locations = [url.findtext(f"{namespace}loc") for url in root]
        for item in (filled, kept):
            assert f"https://example.com/blog/{item['slug']}" in locations
        assert f"https://example.com/blog/{draft['slug']}" not in locations
    finally:
        assert _act(stack, "seo", "deactivate").status_code == 200
