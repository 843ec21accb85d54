from __future__ import annotations

import pytest
from heron_content.slugs import is_valid_slug, next_free_slug, slug_advice, slugify


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


@pytest.mark.parametrize(
    "slug", ["cafe", "café", "日本", "привет-мир", "straße", "2024-recap", "हिन्दी-भाषा"]
)
def test_one_rule_accepts_lowercase_words_of_any_script(slug: str) -> None:
    assert is_valid_slug(slug)
    # Deriving one from a slug keeps it, except that accents come off Latin letters.
    assert slugify(slug) == slug.replace("é", "e")


@pytest.mark.parametrize(
    "slug", ["Café", "a--b", "a_b", "-a", "a-", "a b", "e\u0301", "a/b", "x" * 201]
)
def test_one_rule_refuses_the_rest_with_one_message(slug: str) -> None:
    assert not is_valid_slug(slug)
    advice = slug_advice(slug)
    assert advice.startswith("use lowercase letters (of any script) and digits")
    suggested = advice.rsplit("e.g. ", 1)[1].strip("'")
    assert is_valid_slug(suggested)  # the example it gives is itself a slug
