from __future__ import annotations

import pytest
from heron_content.slugs import is_valid_slug, next_free_slug, slugify


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Hello World", "hello-world"),
        ("Café au lait!", "cafe-au-lait"),
        ("  --Many   spaces__and_underscores-- ", "many-spaces-and-underscores"),
        ("Ünïcödé Ärger", "unicode-arger"),
        ("日本語のタイトル", "日本語のタイトル"),
        ("!!!", ""),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slug_length_is_capped_without_trailing_hyphen() -> None:
    slug = slugify("a" * 199 + " b")
    assert len(slug) <= 200 and not slug.endswith("-")


def test_validity() -> None:
    assert is_valid_slug("hello-world")
    assert not is_valid_slug("Hello")
    assert not is_valid_slug("a b")
    assert not is_valid_slug("")


def test_next_free_slug() -> None:
    assert next_free_slug("post", set()) == "post"
    assert next_free_slug("post", {"post", "post-2"}) == "post-3"
    crowded = next_free_slug("post", {"post", *(f"post-{n}" for n in range(2, 21))})
    assert crowded.startswith("post-") and len(crowded) == len("post-") + 8
