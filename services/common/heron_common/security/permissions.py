"""Permission vocabulary, the built-in roles' names and the principal a request acts as.

Permission strings follow SonicJS's vocabulary (`content.create`, `users.read`, ...). A few may
carry the `:own` scope (`content.update:own`): the permission then holds only for what the
principal itself created. Anonymous callers act with the permissions of the `public` role, and
never see drafts whatever that role holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PERMISSIONS: tuple[str, ...] = (
    "content.create",
    "content.read",
    "content.update",
    "content.delete",
    "content.publish",
    "collections.create",
    "collections.read",
    "collections.update",
    "collections.delete",
    "media.upload",
    "media.read",
    "media.update",
    "media.delete",
    "users.create",
    "users.read",
    "users.update",
    "users.delete",
    "plugins.read",
    "plugins.manage",
    "settings.read",
    "settings.update",
    "cache.manage",
)
OWN = ":own"
# Permissions that may be limited to what the principal created.
OWNABLE: frozenset[str] = frozenset(
    {
        "content.read",
        "content.update",
        "content.delete",
        "content.publish",
        "media.update",
        "media.delete",
    }
)
VALID_PERMISSIONS: frozenset[str] = frozenset(PERMISSIONS) | {p + OWN for p in OWNABLE}
# All that anonymous callers may ever hold: reading what is public. Anything that changes data,
# reveals accounts or settings, or needs an identity (`:own`) is for signed-in callers.
ANONYMOUS_PERMISSIONS: frozenset[str] = frozenset(
    {"content.read", "collections.read", "media.read"}
)

ADMIN_ROLE = "admin"
PUBLIC_ROLE = "public"

# The roles every store starts with (their permissions are the auth service's, heron_auth.roles);
# the names are part of the API (the roles a user may be given).
BUILTIN_ROLE_NAMES: frozenset[str] = frozenset(
    {ADMIN_ROLE, "editor", "author", "viewer", PUBLIC_ROLE}
)


def invalid_permissions(permissions: Iterable[str]) -> list[str]:
    """The strings in `permissions` that are not permissions, in order."""
    return [p for p in permissions if p not in VALID_PERMISSIONS]


def covers(held: frozenset[str], wanted: str) -> bool:
    """Whether holding `held` grants `wanted` in full (`x` covers `x:own`, never the reverse)."""
    if wanted in held:
        return True
    return wanted.endswith(OWN) and wanted[: -len(OWN)] in held


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, after its credentials were verified.

    `permissions` are the effective ones: the role's, narrowed by an API token's scope.
    `token` is the verified access token, forwarded to services so they can verify it again.
    """

    user_id: str
    role: str
    permissions: frozenset[str]
    session_id: str = ""
    api_token_id: str = ""
    token: str = field(default="", repr=False)
    expires_at: float = 0.0
    # SHA-256 (hex) of the session's CSRF token; empty for sessions without one (API tokens).
    csrf_hash: str = field(default="", repr=False)

    @property
    def anonymous(self) -> bool:
        return not self.user_id

    def may(self, permission: str) -> bool:
        """Holds `permission` for at least some things (in full or for its own)."""
        return permission in self.permissions or permission + OWN in self.permissions

    def may_all(self, permission: str) -> bool:
        """Holds `permission` for everything, not only its own."""
        return permission in self.permissions

    def may_on(self, permission: str, owner_id: str) -> bool:
        """Holds `permission` for a thing created by `owner_id`."""
        if permission in self.permissions:
            return True
        return (
            bool(self.user_id)
            and owner_id == self.user_id
            and (permission + OWN in self.permissions)
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata that lets a service verify this principal itself."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def not_for_anonymous(permissions: Iterable[str]) -> list[str]:
    """The permissions in `permissions` that the `public` role may not hold, in order."""
    return [p for p in permissions if p not in ANONYMOUS_PERMISSIONS]


def anonymous(role_permissions: Mapping[str, frozenset[str]]) -> Principal:
    """Anonymous callers: the `public` role's permissions, never more than reading (a store
    edited before that rule existed cannot open writes to anyone)."""
    held = role_permissions.get(PUBLIC_ROLE, frozenset()) & ANONYMOUS_PERMISSIONS
    return Principal("", PUBLIC_ROLE, held)
