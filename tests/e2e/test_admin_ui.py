"""The admin UI in a real browser: Debian's Chromium, headless, driven by Playwright.

Every page is checked with axe-core (no serious or critical violation), its screenshot saved at
desktop and phone widths under `test-artifacts/admin/`, and watched for script errors and
Content-Security-Policy violations.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, Stack, start_stack

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
XSS = [
    "<img src=x onerror=alert(1)>",
    '"><script>alert(2)</script>',
    "<svg/onload=alert(3)>",
    "javascript:alert(4)",
]

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing: install Debian's chromium package (apt install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def admin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("admin-ui"), seed=False)
    yield running
    running.stop()


class Watched:
    """A browser page whose script errors, CSP violations and dialogs are recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("dialog", self._dialog)

    confirming = False
    """Accept the page's own confirmation questions (a revoke, a delete)."""

    def _dialog(self, dialog: Any) -> None:
        if self.confirming and dialog.type == "confirm":
            dialog.accept()
            return
        self.problems.append(f"a dialog opened: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def browser_page(chromium: Any, admin_stack: Stack) -> Iterator[Watched]:
    context = chromium.new_context(base_url=admin_stack.base_url, viewport=None)
    page = context.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    watched = Watched(page)
    yield watched
    context.close()


def _sign_in(page: Any, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _check_page(watched: Watched, name: str) -> None:
    """axe-core finds no serious or critical problem; screenshots at both widths."""
    from axe_playwright_python.sync_playwright import Axe

    page = watched.page
    results = Axe().run(page)
    serious = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, (name, serious)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        # Nothing wider than a phone's screen (a table scrolls inside its own box).
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (name, label, overflow)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not watched.problems, (name, watched.problems)


def test_sign_in_shows_the_dashboard_and_returns_where_you_were(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    name = f"articles_{uuid.uuid4().hex[:6]}"
    made = admin_stack.client.post("/api/collections", json={"name": name, "schema": {}})
    assert made.status_code == 201, made.text
    for title, status in (("One", "published"), ("Two", "draft"), ("Three", "draft")):
        created = admin_stack.client.post(
            "/api/content", json={"collection": name, "title": title, "status": status}
        )
        assert created.status_code == 201, created.text

    reply = page.goto(f"/admin/content/{name}?status=draft")
    assert "/admin/login" in page.url and "next=" in page.url
    assert reply is not None
    _check_page(browser_page, "sign-in")

    _sign_in(page, admin_stack.admin_email, "not-the-password")
    assert page.locator("[role=alert]").inner_text() == "Invalid email or password"
    assert page.input_value("#email") == admin_stack.admin_email  # kept, password not
    assert page.input_value("#password") == ""
    browser_page.problems.clear()  # the browser logs the refused sign-in's 401

    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}?status=draft")
    titles = page.locator("tbody th.title").all_inner_texts()
    assert sorted(titles) == ["Three", "Two"]
    _check_page(browser_page, "content-list")

    page.goto("/admin")
    assert page.locator("h1").inner_text() == "Dashboard"
    row = page.locator("tbody tr", has=page.locator(f"a[href='/admin/content/{name}']"))
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == ["2", "0", "1", "0"]  # draft, review, published, archived
    assert "serving" in page.locator(".checks").inner_text()
    assert page.locator(".recent li").first.locator("a").first.inner_text() == "Three"
    _check_page(browser_page, "dashboard")

    page.goto("/admin/collections")
    assert page.locator(f"code:text-is('{name}')").count() == 1
    _check_page(browser_page, "collections")

    page.click("button:text('Sign out')")
    page.wait_for_url("**/admin/login?message=*")
    assert page.locator("[role=status]").inner_text() == "You have signed out."
    page.goto("/admin")
    assert "/admin/login" in page.url


def test_search_and_filters_update_the_list_in_place(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    name = f"notes_{uuid.uuid4().hex[:6]}"
    assert admin_stack.client.post("/api/collections", json={"name": name}).is_success
    for title in ("Heron wading", "Kingfisher diving", "Heron flying"):
        assert admin_stack.client.post(
            "/api/content", json={"collection": name, "title": title}
        ).is_success
    page.goto(f"/admin/content/{name}")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}")
    page.evaluate("window.__notReloaded = true")
    page.fill("#q", "heron")
    page.wait_for_url("**q=heron*")
    page.wait_for_function("document.querySelectorAll('tbody th.title').length === 2")
    assert sorted(page.locator("tbody th.title").all_inner_texts()) == [
        "Heron flying",
        "Heron wading",
    ]
    assert page.evaluate("window.__notReloaded") is True  # htmx swapped the list in place
    page.select_option("#sort", "title")
    page.wait_for_url("**sort=title*")
    page.wait_for_function(
        "document.querySelector('tbody th.title').textContent === 'Heron flying'"
    )
    assert not browser_page.problems, browser_page.problems


def test_hostile_titles_render_as_text(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    name = f"hostile_{uuid.uuid4().hex[:6]}"
    made = admin_stack.client.post("/api/collections", json={"name": name, "display_name": XSS[0]})
    assert made.status_code == 201, made.text
    for title in XSS:
        assert admin_stack.client.post(
            "/api/content", json={"collection": name, "title": title}
        ).is_success
    page.goto(f"/admin/content/{name}")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}")
    assert sorted(page.locator("tbody th.title").all_inner_texts()) == sorted(XSS)
    assert page.locator("main img, main svg, main script").count() == 0
    for path in ("/admin", "/admin/collections", f"/admin/content/{name}"):
        page.goto(path)
        assert page.locator("main img, main svg, main script").count() == 0, path
    # Filenames, alt texts and captions too (as the media service stored them).
    uploaded = []
    for n, hostile in enumerate(XSS):
        reply = admin_stack.client.post(
            "/api/media/upload",
            files={"file": (f"{hostile}-{n}.png", _png((n * 40, 10, 10)), "image/png")},
            data={"alt": hostile, "caption": hostile},
        )
        assert reply.status_code == 201, reply.text
        stored = reply.json()["data"][0]
        uploaded.append((hostile, stored["id"], stored["filename"]))
    assert any("<" in filename for _, _, filename in uploaded)
    page.goto("/admin/media")
    shown = page.locator("#library .name").all_inner_texts()
    for hostile, media_id, filename in uploaded:
        assert filename in shown, (filename, shown)
        page.goto(f"/admin/media/{media_id}")
        assert page.locator("h1").inner_text() == filename
        assert page.input_value("#alt") == hostile
        assert page.locator("main script, main svg").count() == 0
        assert page.locator("main img").count() == 1  # the preview, nothing injected
    assert not browser_page.problems, browser_page.problems  # no alert, no script ran


def _keeping_cookies(client: httpx.Client) -> None:
    """Like a browser on 127.0.0.1, send `Secure` cookies back over plain HTTP too."""
    jar: dict[str, str] = {}

    def keep(response: httpx.Response) -> None:
        for line in response.headers.get_list("set-cookie"):
            parsed = SimpleCookie()
            parsed.load(line)
            for name, morsel in parsed.items():
                if morsel.value and morsel["max-age"] != "0":
                    jar[name] = morsel.value
                else:
                    jar.pop(name, None)
        client.cookies.clear()
        for name, value in jar.items():
            client.cookies.set(name, value)

    client.event_hooks["response"].append(keep)


def test_forms_without_the_sessions_csrf_token_are_refused(admin_stack: Stack) -> None:
    with httpx.Client(base_url=admin_stack.base_url, follow_redirects=False) as browser:
        _keeping_cookies(browser)
        assert browser.get("/admin/login").status_code == 200
        # Another site's form cannot sign the browser in: its token is not the cookie's.
        forged = browser.post(
            "/admin/login",
            data={"email": admin_stack.admin_email, "password": ADMIN_PASSWORD, "login_csrf": "x"},
        )
        assert forged.status_code == 403
        assert "auth_token" not in forged.cookies
        # The form shown again carries a new token (and its cookie).
        token = forged.text.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
        signed = browser.post(
            "/admin/login",
            data={
                "email": admin_stack.admin_email,
                "password": ADMIN_PASSWORD,
                "login_csrf": token,
                "next": "//evil.example/admin",
            },
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/admin"  # never to another site
        assert browser.get("/admin").status_code == 200
        refused = browser.post("/admin/logout", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        assert "Form expired" in refused.text
        assert browser.get("/admin").status_code == 200  # still signed in
        page = browser.get("/admin")
        csrf = browser.cookies["csrf_token"]
        assert f'value="{csrf}"' in page.text
        out = browser.post("/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert browser.get("/admin").status_code == 303


def test_pages_are_locked_down(admin_stack: Stack) -> None:
    reply = httpx.get(f"{admin_stack.base_url}/admin/login")
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["cache-control"] == "no-store"
    anonymous = httpx.get(f"{admin_stack.base_url}/admin/collections", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/admin/login?next=%2Fadmin%2Fcollections")
    script = httpx.get(f"{admin_stack.base_url}/admin/assets/htmx.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )


def _new_collection(stack: Stack, prefix: str, schema: dict[str, Any]) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    made = stack.client.post("/api/collections", json={"name": name, "schema": schema})
    assert made.status_code == 201, made.text
    return name


PRODUCT_SCHEMA = {
    "properties": {
        "price": {"type": "number", "minimum": 0, "required": True},
        "body": {"type": "richtext"},
        "category": {"type": "select", "options": ["birds", "fish"]},
        "in_stock": {"type": "boolean"},
        "tags": {"type": "multiselect", "options": ["new", "sale", "rare"]},
        "notes": {"type": "markdown"},
    }
}


def test_an_editor_creates_fixes_and_publishes_an_item(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    name = _new_collection(admin_stack, "products", PRODUCT_SCHEMA)
    page.goto(f"/admin/content/{name}/new")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}/new")
    _check_page(browser_page, "item-new")

    page.fill("#title", "Grey heron print")
    page.fill("#field-price", "-5")
    page.fill("#field-body", "<p>Wading <strong>bird</strong></p><script>alert(1)</script>")
    page.select_option("#field-category", "birds")
    page.check("#field-in_stock")
    page.select_option("#field-tags", ["new", "rare"])
    page.fill("#field-notes", "A **framed** print <script>alert(9)</script>")
    page.click("button:has-text('Preview Notes')")
    page.wait_for_selector("#field-notes-preview .rendered")
    assert page.locator("#field-notes-preview strong").inner_text() == "framed"
    assert page.locator("#field-notes-preview script").count() == 0
    page.click("button:has-text('Preview Body')")
    page.wait_for_selector("#field-body-preview .rendered")
    assert page.locator("#field-body-preview strong").inner_text() == "bird"
    assert page.locator("#field-body-preview script").count() == 0
    page.click("button[value=save]")
    # The service's message, next to the field; what was typed is kept.
    problem = page.locator("#data-price-problem")
    assert "0" in problem.inner_text()
    assert page.get_attribute("#field-price", "aria-invalid") == "true"
    assert page.input_value("#field-body").startswith("<p>Wading")
    assert page.is_checked("#field-in_stock")
    browser_page.problems.clear()  # the browser logs the refused save's 400
    _check_page(browser_page, "item-invalid")

    page.fill("#field-price", "12.5")
    page.click("button[value=publish]")
    page.wait_for_url("**?saved=1")
    assert page.locator("[role=status]").inner_text() == "Saved."
    item_id = page.url.split("/")[-1].split("?")[0]
    public = httpx.get(f"{admin_stack.base_url}/api/content/{item_id}")
    assert public.status_code == 200, public.text  # published: anyone reads it
    data = public.json()["data"]
    assert data["title"] == "Grey heron print"
    assert data["data"]["price"] == 12.5
    assert data["data"]["category"] == "birds"
    assert data["data"]["in_stock"] is True
    assert sorted(data["data"]["tags"]) == ["new", "rare"]
    assert "<script>" not in data["data"]["body"]  # sanitized on write
    _check_page(browser_page, "item-edit")

    with page.expect_navigation():
        page.click("button[value=unpublish]")
    assert page.locator(".meta .status").inner_text() == "draft"
    # The page the public read a moment ago is not served again: drafts are not public.
    assert httpx.get(f"{admin_stack.base_url}/api/content/{item_id}").status_code == 404


def test_a_second_save_from_a_stale_page_shows_both_versions(
    chromium: Any, admin_stack: Stack
) -> None:
    name = _new_collection(admin_stack, "notes", {"properties": {"text": {"type": "text"}}})
    made = admin_stack.client.post(
        "/api/content", json={"collection": name, "title": "Shared", "data": {"text": "v1"}}
    )
    item_id = made.json()["data"]["id"]
    context = chromium.new_context(base_url=admin_stack.base_url)
    first, second = context.new_page(), context.new_page()
    first.goto(f"/admin/content/{name}/{item_id}")
    _sign_in(first, admin_stack.admin_email, ADMIN_PASSWORD)
    first.wait_for_url(f"**/admin/content/{name}/{item_id}")
    second.goto(f"/admin/content/{name}/{item_id}")  # the same session: both open version 1
    first.fill("#field-text", "mine")
    first.click("button[value=save]")
    first.wait_for_url("**?saved=1")
    second.fill("#field-text", "theirs")
    second.click("button[value=save]")
    second.wait_for_selector("#theirs-heading")
    assert "Someone else saved" in second.locator("#form-error").inner_text()
    assert '"mine"' in second.locator(".theirs pre").inner_text()
    assert second.input_value("#field-text") == "theirs"  # nothing typed is lost
    stored = admin_stack.client.get(f"/api/content/{item_id}").json()["data"]
    assert stored["data"]["text"] == "mine"
    context.close()


def test_a_viewer_cannot_edit(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    name = _new_collection(admin_stack, "locked", {"properties": {"text": {"type": "text"}}})
    made = admin_stack.client.post(
        "/api/content", json={"collection": name, "title": "Keep", "data": {"text": "same"}}
    )
    item_id = made.json()["data"]["id"]
    viewer = admin_stack.user("viewer")
    page.goto(f"/admin/content/{name}")
    _sign_in(page, viewer.email, viewer.password)
    page.wait_for_url(f"**/admin/content/{name}")
    assert page.locator("text=New item").count() == 0
    assert page.locator("#bulk").count() == 0  # no bulk actions either
    assert page.locator(f"a[href='/admin/content/{name}/{item_id}']").count() == 0
    for path in (f"/admin/content/{name}/{item_id}", f"/admin/content/{name}/new"):
        reply = page.goto(path)
        assert reply is not None and reply.status == 403, path
        assert page.locator("h1").inner_text() == "Not allowed"
    # A form posted directly, with the viewer's own CSRF token, changes nothing.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrf_token")
    posted = page.request.post(
        f"/admin/content/{name}/{item_id}",
        form={"csrf_token": csrf, "title": "Changed", "data.text": "changed", "version": "1"},
    )
    assert posted.status == 403
    stored = admin_stack.client.get(f"/api/content/{item_id}").json()["data"]
    assert (stored["title"], stored["data"]["text"]) == ("Keep", "same")


def test_edit_twice_restore_the_first_version_and_schedule_an_unpublish(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    name = _new_collection(admin_stack, "pages", {"properties": {"text": {"type": "text"}}})
    made = admin_stack.client.post(
        "/api/content",
        json={"collection": name, "title": "First", "data": {"text": "one"}, "status": "published"},
    )
    item_id = made.json()["data"]["id"]
    editor = f"/admin/content/{name}/{item_id}"
    page.goto(editor)
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**{editor}")
    for title, text in (("Second", "two"), ("Third", "three")):
        page.fill("#title", title)
        page.fill("#field-text", text)
        with page.expect_navigation():
            page.click("button[value=save]")
    page.click("text=Revisions")
    page.wait_for_url(f"**{editor}/revisions")
    _check_page(browser_page, "revisions")
    versions = page.locator("tbody tr th").all_inner_texts()
    assert versions == ["3", "2", "1"]
    page.click("a[href$='/revisions/1']")
    changed = page.locator("tr.changed th").all_inner_texts()
    assert any(c.startswith("title") for c in changed)
    assert any(c.startswith("data.text") for c in changed)
    _check_page(browser_page, "revision-diff")
    with page.expect_navigation():
        page.click("button:text('Restore version 1')")
    assert page.input_value("#title") == "First"
    assert page.input_value("#field-text") == "one"
    stored = admin_stack.client.get(f"/api/content/{item_id}").json()["data"]
    assert (stored["title"], stored["data"]["text"], stored["version"]) == ("First", "one", 4)

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    page.fill("#unpublish_at", soon.strftime("%Y-%m-%dT%H:%M"))
    with page.expect_navigation():
        page.click("button[value=schedule]")
    assert "unpublish" in page.locator("#schedule-state").inner_text()
    stored = admin_stack.client.get(f"/api/content/{item_id}").json()["data"]
    expected = int(soon.replace(second=0, microsecond=0).timestamp() * 1000)
    assert stored["scheduled_unpublish_at"] == expected
    assert stored["status"] == "published"  # until then
    with page.expect_navigation():
        page.click("button[value=cancel]")
    assert page.locator("#schedule-state").count() == 0


def test_the_field_builder_creates_and_changes_a_collection(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    authors = _new_collection(admin_stack, "authors", {"properties": {"bio": {"type": "text"}}})
    books = f"books_{uuid.uuid4().hex[:6]}"
    page.goto("/admin/collections/new")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url("**/admin/collections/new")
    page.fill("#name", books)
    page.fill("#display_name", "Books")
    page.fill("#f0-name", "body")
    page.select_option("#f0-type", "richtext")
    with page.expect_navigation():
        page.click("button[value=add]")
    assert page.input_value("#f0-name") == "body"  # what was typed stays
    page.fill("#f1-name", "cover")
    page.select_option("#f1-type", "media")
    page.fill("#f1-accept", "image/*")
    with page.expect_navigation():
        page.click("button[value=add]")
    page.fill("#f2-name", "author")
    page.select_option("#f2-type", "reference")
    page.select_option("#f2-collection", authors)
    page.check("#f2-required")
    with page.expect_navigation():
        page.click("button[value='up:2']")
    assert [page.input_value(f"#f{i}-name") for i in range(3)] == ["body", "author", "cover"]
    _check_page(browser_page, "collection-new")
    with page.expect_navigation():
        page.click("button[value=save]")
    assert page.locator("[role=status]").inner_text() == "Saved."
    schema = admin_stack.client.get(f"/api/collections/{books}").json()["data"]["schema"]
    assert list(schema["properties"]) == ["body", "author", "cover"]
    assert schema["properties"]["body"]["type"] == "richtext"
    author_field = schema["properties"]["author"]
    assert author_field["type"] == "reference"
    assert author_field.get("collections", [author_field.get("collection")]) == [authors]
    assert author_field.get("required") or "author" in schema.get("required", [])
    assert schema["properties"]["cover"] == {"type": "media", "accept": "image/*"}
    _check_page(browser_page, "collection-edit")

    # Removing a field items hold asks first, then applies.
    author = admin_stack.client.post(
        "/api/content", json={"collection": authors, "title": "Ada", "data": {"bio": "x"}}
    ).json()["data"]["id"]
    assert admin_stack.client.post(
        "/api/content",
        json={"collection": books, "title": "B", "data": {"body": "<p>t</p>", "author": author}},
    ).is_success
    with page.expect_navigation():
        page.click("button[value='remove:0']")
    with page.expect_navigation():
        page.click("button[value=save]")
    assert "1 item" in page.locator("#form-error").inner_text()
    schema = admin_stack.client.get(f"/api/collections/{books}").json()["data"]["schema"]
    assert "body" in schema["properties"]  # nothing changed yet
    browser_page.problems.clear()  # the browser logs the refused save's 409
    with page.expect_navigation():
        page.click("button[value=confirm]")
    assert page.locator("[role=status]").inner_text() == "Saved."
    schema = admin_stack.client.get(f"/api/collections/{books}").json()["data"]["schema"]
    assert list(schema["properties"]) == ["author", "cover"]


def _png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "PNG")
    return out.getvalue()


def test_upload_images_describe_one_and_use_it_in_an_item(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    page.goto("/admin/media")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url("**/admin/media")
    _check_page(browser_page, "media-empty")
    stem = uuid.uuid4().hex[:6]
    files = [
        {"name": f"heron-{stem}.png", "mimeType": "image/png", "buffer": _png((90, 120, 160))},
        {"name": f"egret-{stem}.png", "mimeType": "image/png", "buffer": _png((240, 240, 230))},
    ]
    with page.expect_navigation():  # the list reloads once both are in
        page.set_input_files("#upload-files", files)
    names = page.locator("#library .name").all_inner_texts()
    assert {f"heron-{stem}.png", f"egret-{stem}.png"} <= set(names)
    assert page.locator("#library img").count() >= 2
    page.wait_for_function(  # the thumbnails load (same origin, with the session)
        "[...document.querySelectorAll('#library img')].every(i => i.complete && i.naturalWidth)"
    )
    _check_page(browser_page, "media")

    page.click(f"text=heron-{stem}.png")
    page.fill("#alt", "A grey heron standing in water")
    with page.expect_navigation():
        page.click("button:text('Save')")
    assert page.locator("[role=status]").inner_text() == "Saved."
    media_id = page.locator("dd code").inner_text()
    stored = admin_stack.client.get(f"/api/media/{media_id}").json()["data"]
    assert stored["alt"] == "A grey heron standing in water"
    _check_page(browser_page, "media-file")

    name = _new_collection(
        admin_stack, "gallery", {"properties": {"picture": {"type": "media", "accept": "image/*"}}}
    )
    page.goto(f"/admin/content/{name}/new")
    page.fill("#title", "Heron at dawn")
    page.fill("#field-picture", media_id)
    with page.expect_navigation():
        page.click("button[value=publish]")
    item_id = page.url.split("/")[-1].split("?")[0]
    public = httpx.get(f"{admin_stack.base_url}/api/content/{item_id}").json()["data"]
    assert public["data"]["picture"] == media_id
    # Published, so its picture is public too.
    picture = httpx.get(f"{admin_stack.base_url}{stored['url']}")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"

    # Folders: move the other file, find it there, then delete it.
    folder = f"/birds-{stem}"
    page.goto(f"/admin/media?q=egret-{stem}")
    page.check("input[name=id] >> nth=0")
    page.fill("#move-to", folder)
    with page.expect_navigation():
        page.click("#bulk button[value=move]")
    assert page.locator(".notice[role=status]").inner_text() == f"1 moved to {folder}."
    page.goto(f"/admin/media?folder={folder}")
    assert page.locator("#library .name").all_inner_texts() == [f"egret-{stem}.png"]
    browser_page.confirming = True
    page.check("input[name=id] >> nth=0")
    with page.expect_navigation():
        page.click("#bulk button[value=delete]")
    assert page.locator(".notice[role=status]").inner_text() == "1 deleted."
    page.goto(f"/admin/media?folder={folder}")
    assert page.locator("#library").count() == 0


def test_pickers_fill_reference_and_media_fields(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    people = _new_collection(admin_stack, "people", {"properties": {"bio": {"type": "text"}}})
    ada = admin_stack.client.post(
        "/api/content", json={"collection": people, "title": "Ada Lovelace", "status": "published"}
    ).json()["data"]["id"]
    admin_stack.client.post("/api/content", json={"collection": people, "title": "Grace Hopper"})
    uploaded = admin_stack.client.post(
        "/api/media/upload",
        files={"file": (f"portrait-{uuid.uuid4().hex[:6]}.png", _png((20, 40, 60)), "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.text
    picture = uploaded.json()["data"][0]["id"]
    name = _new_collection(
        admin_stack,
        "essays",
        {
            "properties": {
                "body": {"type": "richtext"},
                "author": {"type": "reference", "collection": people},
                "portrait": {"type": "media", "accept": "image/*"},
            }
        },
    )
    page.goto(f"/admin/content/{name}/new")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}/new")
    page.fill("#title", "On engines")
    page.fill("#field-body", "<p>The <em>Analytical</em> Engine</p>")
    page.click(f"summary:text('Find an item of {people}')")
    page.fill("#field-author-search", "ada")
    page.click("button.choice:has-text('Ada Lovelace')")
    assert page.input_value("#field-author") == ada
    page.click("summary:text('Choose from the media library')")
    page.click(f"button.choice[data-pick-value='{picture}']")
    assert page.input_value("#field-portrait") == picture
    _check_page(browser_page, "item-pickers")
    with page.expect_navigation():
        page.click("button[value=publish]")
    item_id = page.url.split("/")[-1].split("?")[0]
    public = httpx.get(f"{admin_stack.base_url}/api/content/{item_id}").json()["data"]
    assert public["data"]["author"] == ada
    assert public["data"]["portrait"] == picture
    assert public["data"]["body"] == "<p>The <em>Analytical</em> Engine</p>"


def test_users_roles_and_api_tokens(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    page.goto("/admin/users")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url("**/admin/users")
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page.fill("#new-email", email)
    page.fill("#new-password", "short")
    with page.expect_navigation():
        page.click("button:text('Create the account')")
    assert page.get_attribute("#new-password", "aria-invalid") == "true"
    assert page.input_value("#new-email") == email
    browser_page.problems.clear()  # the refused form's 400
    page.fill("#new-password", "a-Long-enough-pw-77")
    page.select_option("#new-role", "author")
    with page.expect_navigation():
        page.click("button:text('Create the account')")
    row = page.locator("tbody tr", has=page.locator(f"th:text-is('{email}')"))
    assert row.locator("td").first.inner_text() == "author"
    row.locator("select").select_option("editor")
    with page.expect_navigation():
        row.locator("button[value=role]").click()
    row = page.locator("tbody tr", has=page.locator(f"th:text-is('{email}')"))
    assert row.locator("td").first.inner_text() == "editor"
    with page.expect_navigation():
        row.locator("button[value=disable]").click()
    row = page.locator("tbody tr", has=page.locator(f"th:text-is('{email}')"))
    assert "disabled" in row.inner_text()
    refused = httpx.post(
        f"{admin_stack.base_url}/auth/login",
        json={"email": email, "password": "a-Long-enough-pw-77"},
    )
    assert refused.status_code == 401
    _check_page(browser_page, "users")

    page.goto("/admin/roles")
    box = page.locator("input[aria-label='viewer: media.upload']")
    assert not box.is_checked()
    box.check()
    with page.expect_navigation():
        page.click("button:text('Save viewer')")
    roles = admin_stack.client.get("/api/roles").json()["data"]
    viewer = next(r for r in roles if r["name"] == "viewer")
    assert "media.upload" in viewer["permissions"] and "content.read" in viewer["permissions"]
    _check_page(browser_page, "roles")

    page.goto("/admin/tokens")
    page.fill("#token-name", "deploy script")
    page.fill("#token-days", "30")
    page.click("button:text('Create the token')")
    token = page.input_value("#new-token")
    assert len(token) > 20
    assert (
        httpx.get(
            f"{admin_stack.base_url}/auth/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    _check_page(browser_page, "tokens")
    page.goto("/admin/tokens")
    assert page.locator("#new-token").count() == 0  # shown once
    assert token not in page.content()
    browser_page.confirming = True
    with page.expect_navigation():
        page.click("button:has-text('Revoke')")
    assert page.locator("tbody td:text-is('revoked')").count() == 1
    # Revocations reach every gateway within about a second.
    deadline = time.monotonic() + 10
    while (
        httpx.get(
            f"{admin_stack.base_url}/auth/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        != 401
    ):
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.1)


def test_bulk_publish_and_delete(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    name = _new_collection(admin_stack, "batch", {"properties": {}})
    ids = {
        title: admin_stack.client.post(
            "/api/content", json={"collection": name, "title": title}
        ).json()["data"]["id"]
        for title in ("Alpha", "Beta", "Gamma")
    }
    page.goto(f"/admin/content/{name}")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url(f"**/admin/content/{name}")
    page.check("input[aria-label='Choose Alpha']")
    page.check("input[aria-label='Choose Beta']")
    with page.expect_navigation():
        page.click("#bulk button[value=publish]")
    assert page.locator(".notice[role=status]").inner_text() == "2 published."
    for title, status in (("Alpha", "published"), ("Beta", "published"), ("Gamma", "draft")):
        stored = admin_stack.client.get(f"/api/content/{ids[title]}").json()["data"]
        assert stored["status"] == status, title
    browser_page.confirming = True
    page.check("input[aria-label='Choose Gamma']")
    with page.expect_navigation():
        page.click("#bulk button[value=delete]")
    assert page.locator(".notice[role=status]").inner_text() == "1 deleted."
    assert admin_stack.client.get(f"/api/content/{ids['Gamma']}").status_code == 404
    assert sorted(page.locator("tbody th.title").all_inner_texts()) == ["Alpha", "Beta"]


def test_plugins_activate_and_settings_keep_secrets_secret(
    browser_page: Watched, admin_stack: Stack
) -> None:
    page = browser_page.page
    page.goto("/admin/plugins")
    _sign_in(page, admin_stack.admin_email, ADMIN_PASSWORD)
    page.wait_for_url("**/admin/plugins")
    _check_page(browser_page, "plugins")
    card = page.locator("li.plugin", has=page.locator("h2:text-matches('^seo ')"))
    if card.locator("button:has-text('Install')").count():
        with page.expect_navigation():
            card.locator("button:has-text('Install')").click()
        card = page.locator("li.plugin", has=page.locator("h2:text-matches('^seo ')"))
    with page.expect_navigation():
        card.locator("button:has-text('Activate')").click()
    assert page.locator(".notice[role=status]").inner_text() == "seo activated."
    state = admin_stack.client.get("/api/plugins/seo").json()["data"]
    assert state["status"] == "active"

    secret = "smtp-" + uuid.uuid4().hex
    if admin_stack.client.get("/api/plugins/email").json()["data"]["status"] == "available":
        assert admin_stack.client.post("/api/plugins/email/install").is_success
    page.goto("/admin/plugins/email")
    page.fill("#setting-smtp_host", "mail.example.org")
    page.fill("#setting-smtp_password", secret)
    with page.expect_navigation():
        page.click("button:text('Save')")
    assert page.locator("[role=status]").inner_text() == "Saved."
    assert page.input_value("#setting-smtp_host") == "mail.example.org"
    assert page.input_value("#setting-smtp_password") == ""
    assert (
        "Set: its value is never shown"
        in page.locator("#setting-smtp_password-secret").inner_text()
    )
    assert secret not in page.content()
    stored = admin_stack.client.get("/api/plugins/email/settings").json()["data"]
    assert secret not in str(stored) and "smtp_password" in stored["secrets_set"]
    _check_page(browser_page, "plugin-settings")
    # Saving again without typing it keeps the secret.
    with page.expect_navigation():
        page.click("button:text('Save')")
    stored = admin_stack.client.get("/api/plugins/email/settings").json()["data"]
    assert "smtp_password" in stored["secrets_set"]


def test_your_profile_and_password(browser_page: Watched, admin_stack: Stack) -> None:
    page = browser_page.page
    author = admin_stack.user("author")
    page.goto("/admin/profile")
    _sign_in(page, author.email, author.password)
    page.wait_for_url("**/admin/profile")
    assert author.email in page.locator(".meta").inner_text()
    page.fill("#display_name", "Ada <b>L</b>")
    with page.expect_navigation():
        page.click("button:text('Save')")
    assert page.input_value("#display_name") == "Ada <b>L</b>"
    _check_page(browser_page, "profile")
    page.fill("#current_password", "not-my-password")
    page.fill("#new_password", "a-Brand-new-pw-2026")
    with page.expect_navigation():
        page.click("button:text('Change the password')")
    assert page.locator("#form-error").count() == 1
    browser_page.problems.clear()  # the refused change's error status
    page.fill("#current_password", author.password)
    page.fill("#new_password", "a-Brand-new-pw-2026")
    with page.expect_navigation():
        page.click("button:text('Change the password')")
    assert "/admin/login" in page.url
    assert "password has changed" in page.locator("[role=status]").inner_text()
    page.goto("/admin")  # the old session ended
    assert "/admin/login" in page.url
    _sign_in(page, author.email, "a-Brand-new-pw-2026")
    page.wait_for_url("**/admin")
