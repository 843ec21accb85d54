"""The auth use cases against a SQLite store in a temporary folder: the rules that decide who
may do what, without a server or a network in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from heron_auth import server as auth_server
from heron_auth.profile import Profile
from heron_auth.repository import User
from heron_auth.service import AuthService
from heron_auth.settings import AuthSettings
from heron_common.errors import AlreadyExists, PermissionDenied, Unauthenticated
from heron_common.security.permissions import Principal

PASSWORD = "a-Password-123"


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[AuthService]:
    settings = AuthSettings(
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        redis_url="",
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
        registration_enabled=True,
    )
    async with AsyncExitStack() as stack:
        yield await auth_server.open_service(settings, stack)


async def principal_of(auth: AuthService, user: User) -> Principal:
    roles = {r.name: frozenset(r.permissions) for r in await auth.roles.list()}
    return Principal(user_id=user.id, role=user.role, permissions=roles[user.role])


async def add(auth: AuthService, email: str, role: str = "editor", **profile: str) -> User:
    return await auth.users.add(
        email=email, password=PASSWORD, role=role, profile=Profile(**profile)
    )


async def test_derived_usernames_take_the_next_free_number(auth: AuthService) -> None:
    first = await add(auth, "Jane.Doe@one.example")
    second = await add(auth, "jane.doe@two.example")
    assert (first.username, second.username) == ("jane.doe", "jane.doe2")


async def test_one_account_per_email_whatever_its_case(auth: AuthService) -> None:
    await add(auth, "jane@example.com")
    with pytest.raises(AlreadyExists) as caught:
        await add(auth, "JANE@Example.com")
    assert [d.field for d in caught.value.details] == ["email"]


async def test_a_chosen_username_another_account_has_is_a_conflict(auth: AuthService) -> None:
    await add(auth, "a@example.com", username="writer")
    with pytest.raises(AlreadyExists) as caught:
        await add(auth, "b@example.com", username="Writer")
    assert [d.field for d in caught.value.details] == ["username"]
    other = await add(auth, "c@example.com")
    with pytest.raises(AlreadyExists):
        await auth.users.update_me(await principal_of(auth, other), Profile(username="writer"))


async def test_nobody_gives_a_role_with_more_than_they_hold(auth: AuthService) -> None:
    editor = await principal_of(auth, await add(auth, "editor@example.com"))
    with pytest.raises(PermissionDenied, match="Giving the role 'admin'"):
        await auth.users.create(
            editor, email="x@example.com", password=PASSWORD, role="admin", profile=Profile()
        )
    with pytest.raises(PermissionDenied, match="This token"):
        await auth.api_tokens.create(editor, "ci", ["users.delete"], 0)


async def test_the_last_active_admin_stays(auth: AuthService) -> None:
    admin = await auth.users.add_first_admin("root@example.com", PASSWORD)
    me = await principal_of(auth, admin)
    with pytest.raises(PermissionDenied, match="last active admin"):
        await auth.users.update(
            me, admin.id, profile=Profile(), role=None, status="disabled", password=None
        )
    second = await add(auth, "second@example.com", role="admin")
    changed = await auth.users.update(
        me, second.id, profile=Profile(), role=None, status="disabled", password=None
    )
    assert changed.status == "disabled"
    assert (await auth.users.get(second.id)).status == "disabled"


async def test_a_reused_refresh_token_ends_the_session(auth: AuthService) -> None:
    await add(auth, "jane@example.com")
    issued = await auth.sessions.login("jane@example.com", PASSWORD, "192.0.2.1")
    renewed = await auth.sessions.refresh(issued.refresh_token)
    with pytest.raises(Unauthenticated, match="already used"):
        await auth.sessions.refresh(issued.refresh_token)
    with pytest.raises(Unauthenticated):
        await auth.sessions.refresh(renewed.refresh_token)
    state, _ = await auth.sessions.auth_state(0, "")
    assert issued.session_id in {session for session, _ in state.revocations}


async def test_changing_the_password_signs_out_every_session(auth: AuthService) -> None:
    user = await add(auth, "jane@example.com")
    issued = await auth.sessions.login("jane@example.com", PASSWORD, "192.0.2.1")
    me = await principal_of(auth, user)
    await auth.users.change_password(me, PASSWORD, "another-Password-456", "192.0.2.1")
    state, _ = await auth.sessions.auth_state(0, "")
    assert issued.session_id in {session for session, _ in state.revocations}
    with pytest.raises(Unauthenticated):
        await auth.sessions.login("jane@example.com", PASSWORD, "192.0.2.1")
    await auth.sessions.login("jane@example.com", "another-Password-456", "192.0.2.1")


async def test_a_revoked_api_token_no_longer_exchanges(auth: AuthService) -> None:
    user = await add(auth, "jane@example.com")
    me = await principal_of(auth, user)
    row, secret = await auth.api_tokens.create(me, "ci", ["content.read"], 0)
    assert row.permissions == ["content.read"] and secret.startswith(row.prefix)
    await auth.api_tokens.exchange(secret)
    await auth.api_tokens.revoke(me, row.id)
    with pytest.raises(Unauthenticated):
        await auth.api_tokens.exchange(secret)
    assert [t.revoked_at is not None for t in await auth.api_tokens.list(me)] == [True]
