"""The admin UI's pieces that need no browser: the vendored htmx, where sign-in may send you,
and that every template escapes what it shows."""

from __future__ import annotations

import hashlib

import pytest
from heron_gateway.admin_ui import pages

from tests.unit.gateway.conftest import gateway_client

HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_the_vendored_htmx_is_the_pinned_release() -> None:
    body = (pages.ASSETS / "htmx.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == HTMX_SHA256
    readme = (pages.ASSETS / "README.md").read_text()
    assert f"htmx {pages.HTMX_VERSION}" in readme and HTMX_SHA256 in readme


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/content/blog?status=draft", "/admin/content/blog?status=draft"),
        ("/admin", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("https://evil.example/admin", "/admin"),
        ("/admin\\@evil.example", "/admin"),
        ("/admin/login?next=/admin", "/admin"),
        ("/api/content", "/admin"),
        ("/admin\r\nSet-Cookie: x=1", "/admin"),
        ("", "/admin"),
        (None, "/admin"),
    ],
)
def test_sign_in_only_ever_returns_to_an_admin_page(target: str | None, expected: str) -> None:
    assert pages._safe_next(target) == expected


def test_templates_escape_what_they_show() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    html = pages.templates.get_template("error.html").render(
        user=None,
        csrf_token='"><script>',
        path="/admin",
        htmx_version="x",
        title=hostile,
        message=hostile,
    )
    assert hostile not in html and "<script>" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert 'hx-headers=\'{"X-CSRF-Token": "\\"\\u003e\\u003cscript\\u003e"}\'' in html


def test_times_show_in_utc() -> None:
    shown = str(pages._when(1_764_777_600_000))
    assert shown == '<time datetime="2025-12-03T16:00:00Z">2025-12-03 16:00 UTC</time>'
    assert str(pages._when(0)) == ""


async def test_a_page_whose_services_are_away_is_a_page_not_json() -> None:
    async with gateway_client() as gateway:
        page = await gateway.get("/admin/login")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["retry-after"] == "1"
        assert "A service is unavailable" in page.text
        api = await gateway.get("/admin/api/collections")  # SonicJS's JSON stays JSON
        assert api.headers["content-type"].startswith("application/json")
