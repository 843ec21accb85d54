"""Collections as code: JSON or YAML files in `HERON_CONTENT_COLLECTIONS_DIR`, synced at start.

Each file (`*.json`, `*.yaml`, `*.yml`) defines one collection:

    name: articles            # optional: the file's stem otherwise
    display_name: Articles
    description: What the newsroom publishes
    schema:
      properties:
        body: {type: richtext, required: true}

At start every file is applied: a collection that does not exist is created, one that does is
updated to match (display name, description, schema) — with the safety of any schema change:
a change that would remove or convert data items hold is not applied (the file says so in the
log, and the collection keeps its schema), so a sync never deletes data. Collections so
defined are `managed`, name their file as `source`, and are read-only through the API (403
naming the file); their items are written as any others. A file that disappears leaves its
collection (and data) as it was, editable again. A sync changes nothing when the files did not
change, so restarts are idempotent, and two replicas starting at once end with one collection:
a create that loses the race is an update of the winner's, and a schema change holds the
collection's row, so the second finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import yaml  # type: ignore[import-untyped]
from heron_common.errors import AlreadyExists, DomainError

from heron_content import repository as repo
from heron_content.service import ContentService

logger = logging.getLogger("heron.content.collections")

SUFFIXES = (".json", ".yaml", ".yml")
_KEYS = frozenset({"name", "display_name", "displayName", "description", "schema"})


class DefinitionError(ValueError):
    """A file that is not a collection definition."""


def read_definition(path: Path) -> dict[str, Any]:
    """One file's collection: {name, display_name, description, schema}."""
    text = path.read_bytes()
    try:
        raw = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(f"not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(raw, dict):
        raise DefinitionError("expected a mapping with name, display_name, description, schema")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise DefinitionError(f"unknown keys: {', '.join(map(str, unknown))}")
    name = raw.get("name", path.stem)
    display = raw.get("display_name", raw.get("displayName", ""))
    description = raw.get("description", "")
    for key, value in (("name", name), ("display_name", display), ("description", description)):
        if not isinstance(value, str):
            raise DefinitionError(f"{key} must be a string")
    return {
        "name": name,
        "display_name": display or name,
        "description": description,
        "schema": raw.get("schema"),
    }


def read_directory(directory: Path) -> list[tuple[str, dict[str, Any] | str]]:
    """Each definition file of `directory`, by name: its collection, or why it is none."""
    if not directory.is_dir():
        raise DefinitionError(f"{directory} is not a directory")
    found: list[tuple[str, dict[str, Any] | str]] = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES):
        try:
            found.append((path.name, read_definition(path)))
        except (DefinitionError, OSError) as exc:
            found.append((path.name, str(exc)))
    return found


async def sync_collections(service: ContentService, directory: Path) -> dict[str, str]:
    """Apply every definition file of `directory`; file name -> what happened (created,
    updated, unchanged, or why it was not applied)."""
    try:
        files = await asyncio.to_thread(read_directory, directory)
    except DefinitionError as exc:
        logger.error("collections directory not read", extra={"error": str(exc)})
        return {}
    outcome: dict[str, str] = {}
    for name, definition in files:
        outcome[name] = await _apply(service, name, definition)
    await _release_vanished(service, {name for name, _ in files})
    return outcome


async def _apply(service: ContentService, name: str, definition: dict[str, Any] | str) -> str:
    if isinstance(definition, str):
        logger.error("collection file not applied", extra={"file": name, "error": definition})
        return f"not applied: {definition}"
    try:
        for attempt in range(2):  # a create that lost the race becomes an update
            try:
                return await _create_or_update(service, name, definition)
            except AlreadyExists:
                if attempt:
                    raise
        raise AssertionError("unreachable")
    except DomainError as exc:
        reason = exc.message + "".join(f"; {d.field}: {d.message}" for d in exc.details[:5])
        logger.error("collection file not applied", extra={"file": name, "error": reason})
        return f"not applied: {reason}"


async def _create_or_update(
    service: ContentService, source: str, definition: dict[str, Any]
) -> str:
    collections = service.collections
    # From the database itself: another replica may have just made it.
    async with collections.db.read() as conn:
        existing = await repo.get_collection(conn, definition["name"])
    if existing is None:
        await collections.create(**definition, source=source)
        logger.info("collection created from its file", extra={"file": source})
        return "created"
    updated = await collections.update(
        definition["name"],
        display_name=definition["display_name"],
        description=definition["description"],
        schema=definition["schema"],
        schema_set=True,
        source=source,
    )
    if updated.version == existing.version:
        return "unchanged"
    logger.info("collection updated from its file", extra={"file": source})
    return "updated"


async def _release_vanished(service: ContentService, present: set[str]) -> None:
    """Collections whose file is gone stay as they are, editable through the API again."""
    for row in await service.collections.list():
        if row.source and row.source not in present:
            await service.collections.update(row.name, source="")
            logger.warning(
                "collection file gone: the collection stays, editable again",
                extra={"collection": row.name, "file": row.source},
            )
