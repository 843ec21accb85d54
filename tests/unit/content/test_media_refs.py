"""Which files an item uses: its media fields' ids and the files its text links to."""

from __future__ import annotations

import orjson
from heron_content.media_refs import accepts, field_refs, linked, used_media

A = "0190c8b6-1111-7000-8000-000000000001"
B = "0190c8b6-2222-7000-8000-000000000002"
C = "0190c8b6-3333-7000-8000-000000000003"
SCHEMA = {
    "properties": {
        "cover": {"type": "media", "accept": "image/*"},
        "gallery": {"type": "media", "multiple": True},
        "author": {"type": "reference", "collections": ["people"]},
        "blocks": {
            "type": "array",
            "items": {"type": "object", "properties": {"image": {"type": "media"}}},
        },
        "body": {"type": "richtext"},
    }
}


def test_media_fields_are_found_through_objects_and_arrays_and_nothing_else() -> None:
    data = {
        "cover": A,
        "gallery": [B, "https://elsewhere.example/x.png"],
        "author": C,  # an item id, not a file
        "blocks": [{"image": C}, {"image": 7}],
    }
    refs = field_refs(SCHEMA, data)
    assert [(r.path, r.media_id) for r in refs] == [
        ("data.cover", A),
        ("data.gallery.0", B),
        ("data.blocks.0.image", C),
    ]
    assert refs[0].accept == ("image/*",)


def test_links_to_files_in_text_count_and_other_paths_do_not() -> None:
    data = {"body": f'<img src="/files/{A}/a.png"> <a href="/api/media/{B}">x</a> /files/{C}'}
    assert linked(orjson.dumps(data).decode()) == {A, C}
    assert used_media(SCHEMA, data, orjson.dumps(data).decode()) == {A, C}
    assert linked(orjson.dumps({"body": f"/files/{A}x"}).decode()) == set()


def test_accept_patterns() -> None:
    assert accepts((), "application/pdf")
    assert accepts(("image/*",), "image/png")
    assert not accepts(("image/*",), "text/plain")
    assert accepts(("image/png", "application/pdf"), "application/pdf")
