"""`heron` command line: `up`, `migrate`, `user create`, `seed`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from heron_common.registry import SERVICES

from heron import seed
from heron.supervisor import Process, Supervisor


def _common_env(data_dir: Path) -> dict[str, str]:
    # At a terminal people read the logs: plain text unless JSON is asked for.
    return {
        "HERON_DATA_DIR": str(data_dir.resolve()),
        "HERON_LOG_JSON": os.environ.get("HERON_LOG_JSON", "false"),
    }


def _port_in_use(host: str, port: int) -> bool:
    """Whether a server could not listen on host:port, probed the way our servers bind.

    uvicorn and gRPC set SO_REUSEADDR, so connections of a previous run left in TIME_WAIT do
    not stop them (for about a minute after it served traffic); only a socket bound or
    listening there does.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _warn_overridden_targets(targets: dict[str, tuple[str, str]]) -> None:
    """Say which service addresses set in the environment `heron up` does not follow."""
    for name, (target, flag) in targets.items():
        wanted = os.environ.get(name)
        if wanted and wanted != target:
            print(
                f"heron: warning: ignoring {name}={wanted}: heron up connects its processes "
                f"to each other ({target}); pass {flag} to move it.",
                file=sys.stderr,
            )


def cmd_up(args: argparse.Namespace) -> int:
    """Start every Heron process with embedded defaults and supervise them."""
    ports = {s.name: int(getattr(args, f"{s.name}_port")) for s in SERVICES}
    targets = {s.name: f"127.0.0.1:{ports[s.name]}" for s in SERVICES}
    _warn_overridden_targets(
        {s.target_variable: (targets[s.name], f"--{s.name}-port") for s in SERVICES}
    )
    # Checked first: another instance on the port would answer our readiness probe.
    for what, host, port, flag in (
        ("the gateway", args.host, args.port, "--port"),
        *(
            (f"the {s.name} service", "127.0.0.1", ports[s.name], f"--{s.name}-port")
            for s in SERVICES
        ),
    ):
        if _port_in_use(host, port):
            print(
                f"heron: {host}:{port} is in use (wanted for {what}); is Heron already "
                f"running? Stop it or pass {flag}.",
                file=sys.stderr,
            )
            return 1
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _common_env(data_dir)
    admin = _ensure_admin(env)
    if admin is None:
        return 1
    gateway_env = {"HERON_GATEWAY_HOST": args.host, "HERON_GATEWAY_PORT": str(args.port)}
    for service in SERVICES:
        # Every process finds the auth service; the gateway finds every service.
        into = env if service.target_for_all else gateway_env
        into[service.target_variable] = targets[service.name]
    # The processes it starts vouch for client addresses to each other with this (the auth
    # service counts sign-in attempts per client); one per run unless the operator set one.
    env["HERON_INTERNAL_SECRET"] = os.environ.get("HERON_INTERNAL_SECRET") or secrets.token_urlsafe(
        32
    )
    processes = [
        *(
            Process(s.name, s.package, {**env, s.port_variable: str(ports[s.name])})
            for s in SERVICES
        ),
        Process("gateway", "heron_gateway", {**env, **gateway_env}),
    ]
    url = f"http://{args.host}:{args.port}"
    banner = (
        f"\nHeron is running at {url}\n"
        f"  API docs:  {url}/docs\n"
        f"  Try:       curl {url}/api/collections/blog_posts/content\n"
        f"  Data:      {data_dir.resolve()}\n"
        f"{admin}"
        "Press Ctrl-C to stop.\n"
    )
    return Supervisor(processes).run(f"{url}/ready", banner)


def _ensure_admin(env: dict[str, str]) -> str | None:
    """Create the first admin of an empty auth store; the banner text about it (None: failed).

    A generated password is shown this once, on the terminal, and never logged.
    """
    result = subprocess.run(
        [sys.executable, "-m", "heron_auth", "ensure-admin"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"heron: could not prepare the auth store:\n{result.stderr}", file=sys.stderr)
        return None
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    if not answer["created"]:
        return ""
    if answer["password"] is None:
        return f"  Admin:     {answer['email']} (password from HERON_ADMIN_PASSWORD)\n"
    return (
        f"  Admin:     {answer['email']}\n"
        f"  Password:  {answer['password']}\n"
        "             (shown once: write it down; change it with POST /auth/password)\n"
    )


def _can_prompt() -> bool:
    """Whether a password can be asked for as getpass does: on the terminal, or on stdin if
    that is one."""
    try:
        terminal = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return sys.stdin is not None and sys.stdin.isatty()
    os.close(terminal)
    return True


def cmd_user_create(args: argparse.Namespace) -> int:
    """Create an account from the command line, e.g. an admin (for ops)."""
    if not args.password_stdin and not _can_prompt():
        # A usage error, like argparse's (exit code 2): nothing was attempted.
        print(
            "heron: no terminal to ask for the password on; send it on stdin with "
            "--password-stdin, e.g.\n"
            "  printf '%s\\n' \"$PASSWORD\" | heron user create --email ... --password-stdin",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, **_common_env(args.data_dir)}
    argv = [sys.executable, "-m", "heron_auth", "create-user", "--email", args.email]
    argv += ["--role", args.role, "--display-name", args.display_name]
    argv += ["--username", args.username, "--first-name", args.first_name]
    argv += ["--last-name", args.last_name]
    if args.password_stdin:
        argv.append("--password-stdin")
    return subprocess.run(argv, env=env, check=False).returncode


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply every service's database migrations, then exit."""
    env = {**os.environ, **_common_env(args.data_dir)}
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        print(f"heron: migrating {service.name}", file=sys.stderr)
        result = subprocess.run(
            [sys.executable, "-m", service.package, "migrate"], env=env, check=False
        )
        if result.returncode != 0:
            return result.returncode
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heron", description="Heron, a headless CMS as Python microservices."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("HERON_DATA_DIR", "data")),
        help="where embedded databases live (default: ./data or $HERON_DATA_DIR)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run Heron (gateway and services) on this machine",
        description=f"Run the gateway and the {', '.join(s.name for s in SERVICES)} services "
        "on this machine until Ctrl-C. The processes are connected to each other: "
        f"{' and '.join(s.target_variable for s in SERVICES)}, if set, are ignored (with a "
        f"warning); {' and '.join(f'--{s.name}-port' for s in SERVICES)} move the services.",
    )
    up.add_argument("--host", default=os.environ.get("HERON_GATEWAY_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("HERON_GATEWAY_PORT", "8000")))
    for service in SERVICES:
        up.add_argument(
            f"--{service.name}-port",
            type=int,
            default=int(os.environ.get(service.port_variable, str(service.default_port))),
            help=f"gRPC port of the {service.name} service",
        )
    up.set_defaults(func=cmd_up)

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="create an account (any role, admin included)")
    create.add_argument("--email", required=True)
    create.add_argument("--role", default="viewer", help="admin, editor, author or viewer")
    create.add_argument("--display-name", default="")
    create.add_argument("--username", default="", help="default: from the email's local part")
    create.add_argument("--first-name", default="")
    create.add_argument("--last-name", default="")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of prompting (needed without a terminal)",
    )
    create.set_defaults(func=cmd_user_create)

    migrate = sub.add_parser("migrate", help="apply database migrations of every service")
    migrate.set_defaults(func=cmd_migrate)
    seed.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
