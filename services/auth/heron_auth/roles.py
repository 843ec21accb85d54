"""The roles every auth store starts with: what each may do (editable later by admins, except
`admin`, which always holds every permission)."""

from __future__ import annotations

from heron_common.security.permissions import ADMIN_ROLE, PERMISSIONS, PUBLIC_ROLE

# (name, description, permissions)
BUILTIN_ROLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (ADMIN_ROLE, "Everything, including users, roles and settings.", PERMISSIONS),
    (
        "editor",
        "Creates, edits and publishes all content; manages media.",
        (
            "content.create",
            "content.read",
            "content.update",
            "content.delete",
            "content.publish",
            "collections.read",
            "media.upload",
            "media.read",
            "media.update",
            "media.delete",
        ),
    ),
    (
        "author",
        "Writes content; changes and reads drafts of their own items only; cannot publish.",
        (
            "content.create",
            "content.read:own",
            "content.update:own",
            "content.delete:own",
            "collections.read",
            "media.upload",
            "media.read",
            "media.update:own",
            "media.delete:own",
        ),
    ),
    (
        "viewer",
        "Reads everything, drafts included; changes nothing.",
        ("content.read", "collections.read", "media.read"),
    ),
    (
        PUBLIC_ROLE,
        "Anonymous callers. Whatever it holds, anonymous callers see published content only.",
        ("content.read", "collections.read", "media.read"),
    ),
)
