"""The auth service's gRPC server on port 0, on SQLite and PostgreSQL: what its callers (the
gateway, other services) rely on, without HTTP in between."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import grpc
import pytest
from cms.auth.v1 import auth_pb2 as pb
from cms.auth.v1 import auth_pb2_grpc
from cms.common.v1.common_pb2 import PageRequest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from heron_auth import server as auth_server
from heron_auth.service import AuthService
from heron_auth.servicer import AuthServicer
from heron_auth.settings import AuthSettings
from heron_common.errors import AlreadyExists, InvalidArgument, PermissionDenied, Unauthenticated
from heron_common.events import Event
from heron_common.rpc.client import call, create_channel
from heron_common.service import Built

from tests.integration.conftest import start_built

PASSWORD = "admin-Pw-12345"


@dataclass
class AuthBackend:
    service: AuthService
    stub: auth_pb2_grpc.AuthServiceStub
    channel: grpc.aio.Channel
    admin: tuple[tuple[str, str], ...]  # metadata of the admin's access token


@pytest.fixture
async def auth(database_url: str) -> AsyncIterator[AuthBackend]:
    settings = AuthSettings(
        database_url=database_url,
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
        registration_enabled=True,
    )
    async with AsyncExitStack() as stack:
        service = await auth_server.open_service(settings, stack)
        await service.users.add_first_admin("Root@Example.com", PASSWORD)
        built = Built(
            register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(
                AuthServicer(service), server
            ),
            authenticator=auth_server.build_authenticator(service, settings),
        )
        started = await start_built(auth_server.SPEC, built, stack)
        channel = create_channel(f"127.0.0.1:{started.port}")
        stack.push_async_callback(channel.close)
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        session = await call(
            stub.Login, pb.LoginRequest(email="root@example.com", password=PASSWORD), timeout=5
        )
        yield AuthBackend(
            service, stub, channel, (("authorization", f"Bearer {session.access_token}"),)
        )


async def test_it_is_serving_under_its_registered_name(auth: AuthBackend) -> None:
    health = health_pb2_grpc.HealthStub(auth.channel)
    for name in ("", auth_server.SPEC.grpc_service):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_sign_in_and_registration_over_grpc(auth: AuthBackend) -> None:
    with pytest.raises(Unauthenticated, match="Invalid email or password"):
        await call(
            auth.stub.Login, pb.LoginRequest(email="root@example.com", password="nope"), timeout=5
        )
    registered = await call(
        auth.stub.Register,
        pb.RegisterRequest(
            email="New.Person@Example.com", password=PASSWORD, first_name="New", last_name="P"
        ),
        timeout=5,
    )
    user = registered.user
    assert (user.email, user.username, user.role) == (
        "new.person@example.com",
        "new.person",
        "viewer",
    )
    assert registered.access_token and registered.refresh_token and registered.csrf_token
    with pytest.raises(AlreadyExists, match="already exists"):
        await call(
            auth.stub.Register,
            pb.RegisterRequest(email="other@example.com", password=PASSWORD, username="NEW.PERSON"),
            timeout=5,
        )
    with pytest.raises(InvalidArgument, match="reserved"):
        await call(
            auth.stub.Register,
            pb.RegisterRequest(email="sneaky@example.com", password=PASSWORD, username="admin"),
            timeout=5,
        )


async def test_methods_check_their_callers(auth: AuthBackend) -> None:
    with pytest.raises(Unauthenticated):
        await call(auth.stub.ListUsers, pb.ListUsersRequest(), timeout=5)
    listed = await call(auth.stub.ListUsers, pb.ListUsersRequest(), timeout=5, metadata=auth.admin)
    assert [u.username for u in listed.users] == ["admin"] and listed.page.total == 1
    assert listed.users[0].HasField("last_login_at")  # the admin signed in
    with pytest.raises(InvalidArgument, match="limit"):
        bad_page = pb.ListUsersRequest(page=PageRequest(limit=0))
        await call(auth.stub.ListUsers, bad_page, timeout=5, metadata=auth.admin)
    viewer = await call(
        auth.stub.Register,
        pb.RegisterRequest(email="v@example.com", password=PASSWORD),
        timeout=5,
    )
    as_viewer = (("authorization", f"Bearer {viewer.access_token}"),)
    assert not viewer.user.HasField("last_login_at")  # registered, never signed in
    with pytest.raises(PermissionDenied):
        await call(auth.stub.ListUsers, pb.ListUsersRequest(), timeout=5, metadata=as_viewer)
    me = await call(
        auth.stub.UpdateMe, pb.UpdateMeRequest(username="Vee"), timeout=5, metadata=as_viewer
    )
    assert me.username == "vee"


async def test_writes_publish_their_events_after_commit(auth: AuthBackend) -> None:
    seen: list[tuple[str, str]] = []

    async def subscriber(events: Sequence[Event]) -> None:
        seen.extend((e.name, e.subject) for e in events)

    auth.service.events.subscribe(subscriber)
    registered = await call(
        auth.stub.Register,
        pb.RegisterRequest(email="e@example.com", password=PASSWORD),
        timeout=5,
    )
    assert seen == [
        ("user.created", registered.user.id),
        ("session.started", registered.session_id),
    ]
    seen.clear()
    with pytest.raises(AlreadyExists):  # refused: nothing committed, nothing published
        await call(
            auth.stub.Register,
            pb.RegisterRequest(email="E@example.com", password=PASSWORD),
            timeout=5,
        )
    assert seen == []
    await call(
        auth.stub.Logout,
        pb.LogoutRequest(refresh_token=registered.refresh_token),
        timeout=5,
    )
    assert seen == [("session.revoked", registered.session_id)]
