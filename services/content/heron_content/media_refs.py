"""The media files an item's data uses: the ids its `media` fields hold, and the files its text
links to (`/files/<id>/...`, as a richtext body embeds an image).

They are recorded per item (`item_media`), so the media service can ask which files published
items use: an anonymous caller gets only those (heron_media), and a change of an item that
uses a file invalidates what caches hold of it (the `media:<id>` tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from heron_common.ids import is_id

_FILE_LINK = re.compile(
    r"/files/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?=[/?#\"'\s)\\]|$)"
)


@dataclass(frozen=True)
class MediaRef:
    """A media id held by a `media` field at `path`, and the types the field accepts."""

    path: str
    media_id: str
    accept: tuple[str, ...]


def field_refs(schema: dict[str, Any], data: dict[str, Any]) -> list[MediaRef]:
    """The media ids `data`'s media fields hold (URLs of files elsewhere are not ids), through
    objects and arrays. Lenient: a value that does not fit the schema is skipped."""
    found: list[MediaRef] = []
    for name, definition in schema.get("properties", {}).items():
        if name in data:
            _walk(definition, data[name], f"data.{name}", found)
    return found


def _walk(definition: dict[str, Any], value: Any, path: str, found: list[MediaRef]) -> None:
    kind = definition.get("type")
    if kind == "media":
        values = value if isinstance(value, list) else [value]
        accept = _accept(definition.get("accept"))
        listed = isinstance(value, list)
        for n, v in enumerate(values):
            if isinstance(v, str) and is_id(v):
                found.append(MediaRef(f"{path}.{n}" if listed else path, v, accept))
    elif kind == "object" and isinstance(value, dict):
        for name, nested in definition.get("properties", {}).items():
            if name in value:
                _walk(nested, value[name], f"{path}.{name}", found)
    elif kind == "array" and isinstance(value, list) and isinstance(definition.get("items"), dict):
        for n, v in enumerate(value):
            _walk(definition["items"], v, f"{path}.{n}", found)


def _accept(raw: Any) -> tuple[str, ...]:
    """A field's `accept`: one MIME pattern or a list of them (`image/*`, `application/pdf`,
    or a comma-separated string of those); empty: any file."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        return ()
    return tuple(p.strip().lower() for p in raw if isinstance(p, str) and p.strip())


def accepts(accept: tuple[str, ...], mime_type: str) -> bool:
    if not accept:
        return True
    mime_type = mime_type.lower()
    for pattern in accept:
        if pattern in ("*", "*/*") or pattern == mime_type:
            return True
        if pattern.endswith("/*") and mime_type.startswith(pattern[:-1]):
            return True
    return False


def linked(document: str) -> set[str]:
    """The ids of the files a JSON document's text links to (`/files/<id>/<name>`)."""
    if "/files/" not in document:
        return set()
    return {m.lower() for m in _FILE_LINK.findall(document)}


def used_media(schema: dict[str, Any], data: dict[str, Any], document: str) -> set[str]:
    """Every file the item uses: its media fields' ids and the files its text links to."""
    return {r.media_id for r in field_refs(schema, data)} | linked(document)
