"""The auth service's built-in roles are the ones the API names, and anonymous callers' role
starts with reading only."""

from __future__ import annotations

from heron_auth.roles import BUILTIN_ROLES
from heron_common.security.permissions import (
    ADMIN_ROLE,
    ANONYMOUS_PERMISSIONS,
    BUILTIN_ROLE_NAMES,
    PERMISSIONS,
    PUBLIC_ROLE,
    invalid_permissions,
)


def test_the_built_in_roles_are_the_named_ones_with_valid_permissions() -> None:
    roles = {name: set(permissions) for name, _, permissions in BUILTIN_ROLES}
    assert set(roles) == BUILTIN_ROLE_NAMES
    assert roles[ADMIN_ROLE] == set(PERMISSIONS)
    assert roles[PUBLIC_ROLE] <= ANONYMOUS_PERMISSIONS
    for name, permissions in roles.items():
        assert not invalid_permissions(permissions), name
