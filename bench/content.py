"""Realistic, deterministic content for seeding and for the create scenario."""

from __future__ import annotations

import random
from typing import Any

COLLECTION = "bench_posts"
COLLECTION_SCHEMA: dict[str, Any] = {
    "properties": {
        "body": {"type": "richtext"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "views": {"type": "integer", "indexed": True},  # what the filtered list sorts on
    }
}

_WORDS = (
    "heron river morning light migration wetland feather silent patient shallow water "
    "reed marsh wading fish strike grey blue great egret nest colony spring autumn flight "
    "wing span long neck dagger bill stillness hunting dawn dusk estuary tide mudflat "
    "observer notebook season record survey count habitat shore lake pond stream bank "
    "guide field camera lens distance weather wind cloud rain sun journey return home"
).split()
# Words a search looks for: common (heron), middling and rarer ones of the seeded text.
SEARCH_WORDS = ["heron", "marsh", "egret", "estuary", "notebook", "patient", "dagger", "tide"]
_TAGS = (
    "birds", "nature", "wetlands", "photography", "field-notes", "migration", "conservation",
    "guides", "news", "science", "travel", "seasons",
)  # fmt: skip


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + "."


def item_payload(n: int, *, seed: int = 1) -> dict[str, Any]:
    """Item `n` of a blog-like collection: title, 2 to 4 HTML paragraphs (0.6 to 1.5 KB), tags."""
    rng = random.Random(seed * 1_000_003 + n)
    title = " ".join(rng.choices(_WORDS, k=rng.randint(3, 7))).capitalize()
    paragraphs = [
        "<p>" + " ".join(_sentence(rng) for _ in range(rng.randint(2, 4))) + "</p>"
        for _ in range(rng.randint(2, 4))
    ]
    return {
        "collectionId": COLLECTION,
        "title": f"{title} {n}",
        "status": "published",
        "data": {
            "body": "".join(paragraphs),
            "tags": rng.sample(_TAGS, rng.randint(1, 4)),
            "views": rng.randint(0, 50_000),
        },
    }
