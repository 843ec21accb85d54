"""The workflow plugin: which roles may move an item from one status to another, and which of
those moves need a comment (a reviewer's note), enforced on every create and update through
`content:beforeCreate` and `content:beforeUpdate`.

Its settings hold the transitions: `{"from", "to", "roles", "comment_required"}` each (`from`
may be `*`). With the plugin active, a status change that no transition allows for the
caller's role is refused (400, naming the plugin, the move and who may make it); a create
counts as a move from `draft`. `collections` limits it to those collections (empty: all).
"""

from __future__ import annotations

from typing import Any

from heron_common.limits import ITEM_STATUSES

from heron_plugins.manifest import Hook, Manifest, PluginContext, Reject

EDITORS = ["editor", "admin"]
WRITERS = ["author", "editor", "admin"]
DEFAULT_TRANSITIONS: list[dict[str, Any]] = [
    {"from": "draft", "to": "review", "roles": WRITERS},
    {"from": "review", "to": "draft", "roles": WRITERS},
    {"from": "review", "to": "published", "roles": EDITORS},
    {"from": "draft", "to": "published", "roles": ["admin"]},
    {"from": "published", "to": "draft", "roles": EDITORS},
    {"from": "*", "to": "archived", "roles": EDITORS},
    {"from": "archived", "to": "draft", "roles": EDITORS},
]


class _State:
    context: PluginContext | None = None


_state = _State()


async def start(context: PluginContext) -> None:
    _state.context = context


async def stop() -> None:
    _state.context = None


async def _settings() -> dict[str, Any]:
    """Read when a status changes (one small read): a settings change applies at once."""
    return await _state.context.settings() if _state.context is not None else {}


def _check(
    settings: dict[str, Any], collection: str, role: str, before: str, after: str, comment: str
) -> None:
    collections = settings.get("collections") or []
    if before == after or (collections and collection not in collections):
        return
    transitions = settings.get("transitions", DEFAULT_TRANSITIONS)
    moves = [t for t in transitions if t["to"] == after and t["from"] in (before, "*")]
    allowed = [t for t in moves if role in t.get("roles", [])]
    if not allowed:
        who = sorted({r for t in moves for r in t.get("roles", [])})
        may = f"only {', '.join(who)} may" if who else "nobody may"
        raise Reject(
            f"the workflow does not let {role} move an item from {before} to {after}; {may}"
        )
    if any(t.get("comment_required") for t in allowed) and not comment.strip():
        raise Reject(f"moving an item from {before} to {after} needs a comment (`comment`)")


async def before_create(payload: dict[str, Any]) -> None:
    item = payload["item"]
    status = item.get("status") or "draft"
    if status != "draft":
        settings = await _settings()
        role = payload["actor"]["role"]
        _check(settings, item.get("collection", ""), role, "draft", status, "")


async def before_update(payload: dict[str, Any]) -> None:
    item, current = payload["item"], payload.get("current") or {}
    if "status" not in item or not current:
        return
    settings = await _settings()
    role = payload["actor"]["role"]
    comment = payload.get("comment") or ""
    _check(settings, current["collection"], role, current["status"], item["status"], comment)


_STATUS = {"type": "string", "enum": list(ITEM_STATUSES)}

manifest = Manifest(
    name="workflow",
    version="1.0.0",
    description="Who may move an item between which statuses, and which moves need a comment.",
    author="Heron",
    start=start,
    stop=stop,
    hooks=(
        Hook(event="content:beforeCreate", priority=5, handler=before_create),
        Hook(event="content:beforeUpdate", priority=5, handler=before_update),
    ),
    settings_schema={
        "type": "object",
        "properties": {
            "transitions": {
                "type": "array",
                "maxItems": 100,
                "default": DEFAULT_TRANSITIONS,
                "items": {
                    "type": "object",
                    "properties": {
                        "from": {"type": "string", "enum": [*ITEM_STATUSES, "*"]},
                        "to": _STATUS,
                        "roles": {
                            "type": "array",
                            "items": {"type": "string", "minLength": 1, "maxLength": 64},
                        },
                        "comment_required": {"type": "boolean", "default": False},
                    },
                    "required": ["from", "to", "roles"],
                    "additionalProperties": False,
                },
            },
            "collections": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Only these collections (empty: all).",
            },
        },
        "additionalProperties": False,
    },
)
