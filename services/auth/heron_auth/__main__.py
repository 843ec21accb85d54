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

import orjson
import uvloop
from heron_common.errors import DomainError
from heron_common.logging import configure_logging

from heron_auth.profile import Profile
from heron_auth.server import build_service, serve
from heron_auth.settings import AuthSettings

DEFAULT_ADMIN_EMAIL = "admin@heron.local"


async def _migrate(settings: AuthSettings) -> None:
    service = await build_service(settings)
    await service.database.dispose()


async def _ensure_admin(settings: AuthSettings) -> None:
    service = await build_service(settings)
    try:
        if await service.has_users():
            print(orjson.dumps({"created": False}).decode())
            return
        email = settings.admin_email or DEFAULT_ADMIN_EMAIL
        generated = not settings.admin_password
        password = settings.admin_password or secrets.token_urlsafe(18)
        await service.add_first_admin(email, password)
        print(
            orjson.dumps(
                {"created": True, "email": email, "password": password if generated else None}
            ).decode()
        )
    finally:
        await service.database.dispose()


async def _create_user(settings: AuthSettings, args: argparse.Namespace) -> None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        try:
            password = getpass.getpass(f"Password for {args.email}: ")
        except (EOFError, OSError):  # no terminal, and nothing on stdin
            sys.exit("heron: no terminal to ask for the password; pipe it in with --password-stdin")
    service = await build_service(settings)
    try:
        profile = Profile(
            display_name=args.display_name or None,
            username=args.username or None,
            first_name=args.first_name,
            last_name=args.last_name,
        )
        row = await service.add_user(
            email=args.email, password=password, role=args.role, profile=profile
        )
        print(f"created {row['email']} ({row['role']}), username {row['username']}, id {row['id']}")
    finally:
        await service.database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heron_auth")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve")
    sub.add_parser("migrate")
    sub.add_parser("ensure-admin")
    create = sub.add_parser("create-user")
    create.add_argument("--email", required=True)
    create.add_argument("--role", default="viewer")
    create.add_argument("--display-name", default="")
    create.add_argument("--username", default="")
    create.add_argument("--first-name", default="")
    create.add_argument("--last-name", default="")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    args = parser.parse_args(argv)
    settings = AuthSettings()
    configure_logging("auth", settings.log_level, settings.log_json)
    command = args.command or "serve"
    try:
        if command == "serve":
            uvloop.run(serve(settings))
        elif command == "migrate":
            uvloop.run(_migrate(settings))
        elif command == "ensure-admin":
            uvloop.run(_ensure_admin(settings))
        else:
            uvloop.run(_create_user(settings, args))
    except DomainError as exc:
        sys.exit(f"heron: {exc.message}")


if __name__ == "__main__":
    main()
