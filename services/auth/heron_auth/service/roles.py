"""Role use cases: the built-in roles, and changing what a role may do."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from heron_common.errors import ErrorDetail, InvalidArgument, NotFound, PermissionDenied
from heron_common.ids import now_ms
from heron_common.jsondoc import check_text
from heron_common.security.permissions import (
    ADMIN_ROLE,
    ANONYMOUS_PERMISSIONS,
    PERMISSIONS,
    PUBLIC_ROLE,
    Principal,
    invalid_permissions,
    not_for_anonymous,
)

from heron_auth import repository as repo
from heron_auth.repository import Role
from heron_auth.roles import BUILTIN_ROLES
from heron_auth.service.common import Context, check_may_grant

logger = logging.getLogger("heron.auth")


def check_permission_names(
    permissions: Sequence[str], plugins: frozenset[str] = frozenset()
) -> None:
    """Every name is a Heron permission or one an active plugin adds (`plugins`)."""
    bad = [p for p in invalid_permissions(permissions) if p not in plugins]
    if bad:
        raise InvalidArgument(
            f"Unknown permission: {bad[0][:100]}.",
            [ErrorDetail("permissions", f"unknown: {p[:100]}") for p in bad[:20]],
        )


class Roles:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.plugin_permissions: Callable[[], frozenset[str]] = frozenset
        """The permissions the active plugins add (heron_common.plugin_hooks)."""

    async def ensure_builtin(self) -> None:
        """Add built-in roles a store lacks; never overwrite what an admin edited. The admin
        role always holds every permission, including ones added by a newer version."""
        async with self.context.unit_of_work() as work:
            conn = work.conn
            existing = {r.name: r for r in await repo.list_roles(conn)}
            for name, description, permissions in BUILTIN_ROLES:
                role = existing.get(name)
                if role is None:
                    await repo.insert_role(
                        conn, Role(name, description, list(permissions), True, now_ms())
                    )
                elif name == ADMIN_ROLE and role.permissions != list(PERMISSIONS):
                    await repo.update_role(
                        conn, name, permissions=list(PERMISSIONS), updated_at=now_ms()
                    )
                elif name == PUBLIC_ROLE and not_for_anonymous(role.permissions):
                    # Stored before anonymous callers were limited to reading: take it back.
                    kept = [p for p in role.permissions if p in ANONYMOUS_PERMISSIONS]
                    logger.warning(
                        "the public role held permissions anonymous callers may not have; removed",
                        extra={"removed": not_for_anonymous(role.permissions)},
                    )
                    await repo.update_role(conn, name, permissions=kept, updated_at=now_ms())

    async def list(self) -> list[Role]:
        async with self.context.database.read() as conn:
            return await repo.list_roles(conn)

    async def update(
        self,
        principal: Principal,
        name: str,
        permissions: Sequence[str],
        description: str | None,
    ) -> Role:
        plugins = self.plugin_permissions()
        check_permission_names(permissions, plugins)
        if name == ADMIN_ROLE:
            raise PermissionDenied("The admin role always holds every permission.")
        if name == PUBLIC_ROLE:
            refused = sorted(set(not_for_anonymous(permissions)))
            if refused:
                raise InvalidArgument(
                    "The public role (anonymous callers) may only read; it cannot hold "
                    f"{', '.join(refused)}.",
                    [
                        ErrorDetail("permissions", f"not for anonymous callers: {p}")
                        for p in refused[:20]
                    ],
                )
        # A plugin's permissions are an admin's to hand out (the admin role holds them all).
        admin = principal.role == ADMIN_ROLE and frozenset(PERMISSIONS) <= principal.permissions
        own = [p for p in permissions if not (admin and p in plugins)]
        check_may_grant(principal, own, f"Changing the role {name!r}")
        if description is not None:
            check_text(description, "description")
        async with self.context.unit_of_work() as work:
            role = await repo.get_role(work.conn, name)
            if role is None:
                raise NotFound(f"There is no role {name!r}.")
            held = [p for p in role.permissions if not (admin and p not in PERMISSIONS)]
            check_may_grant(principal, held, f"Changing the role {name!r}")
            values: dict[str, Any] = {
                "permissions": sorted(set(permissions)),
                "updated_at": now_ms(),
            }
            if description is not None:
                values["description"] = description[:1000]
            await repo.update_role(work.conn, name, **values)
            work.record("role.updated", name)
        return repo.changed(role, values)
