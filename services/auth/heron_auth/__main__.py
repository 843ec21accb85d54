"""Entry point: `python -m heron_auth [serve|migrate|ensure-admin|create-user]`.

`ensure-admin` creates the first admin of an empty store (from `HERON_ADMIN_EMAIL` and
`HERON_ADMIN_PASSWORD`, or with a generated password) and prints the credentials once, as
JSON, on stdout: `heron up` shows them. `create-user` is for ops (`heron user create`).
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from contextlib import AsyncExitStack

import orjson
from heron_common.service import Command, main

from heron_auth.profile import Profile
from heron_auth.server import SPEC, open_service
from heron_auth.settings import AuthSettings

DEFAULT_ADMIN_EMAIL = "admin@heron.local"


async def _ensure_admin(settings: AuthSettings, _: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        service = await open_service(settings, stack)
        if await service.users.has_users():
            print(orjson.dumps({"created": False}).decode())
            return
        email = settings.admin_email or DEFAULT_ADMIN_EMAIL
        generated = not settings.admin_password
        password = settings.admin_password or secrets.token_urlsafe(18)
        await service.users.add_first_admin(email, password)
        print(
            orjson.dumps(
                {"created": True, "email": email, "password": password if generated else None}
            ).decode()
        )


async def _create_user(settings: AuthSettings, args: argparse.Namespace) -> None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        try:
            password = getpass.getpass(f"Password for {args.email}: ")
        except (EOFError, OSError):  # no terminal, and nothing on stdin
            sys.exit("heron: no terminal to ask for the password; pipe it in with --password-stdin")
    async with AsyncExitStack() as stack:
        service = await open_service(settings, stack)
        profile = Profile(
            display_name=args.display_name or None,
            username=args.username or None,
            first_name=args.first_name,
            last_name=args.last_name,
        )
        user = await service.users.add(
            email=args.email, password=password, role=args.role, profile=profile
        )
        print(f"created {user.email} ({user.role}), username {user.username}, id {user.id}")


def _user_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)
    parser.add_argument("--role", default="viewer")
    parser.add_argument("--display-name", default="")
    parser.add_argument("--username", default="")
    parser.add_argument("--first-name", default="")
    parser.add_argument("--last-name", default="")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )


COMMANDS: dict[str, Command[AuthSettings]] = {
    "ensure-admin": Command(_ensure_admin, help="create the first admin of an empty store"),
    "create-user": Command(_create_user, _user_arguments, help="create an account"),
}

if __name__ == "__main__":
    main(SPEC, COMMANDS)
