"""`heron seed`: fill a running Heron with realistic demo content, through its REST API.

It signs in (an API token, or an account's email and password), activates the `demo-data`
plugin if it is not, and asks it for the items in batches, showing the progress. It works on
any Heron it can reach: `make up` on this machine, or a deployment.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PLUGIN = "demo-data"
RETRIES = 5


class SeedError(Exception):
    """Something the person running the command must fix; the message says what."""


def _problem(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return f"{reply.status_code} {reply.text[:200]}"
    message = body.get("error") or body.get("message") or reply.text[:200]
    return f"{reply.status_code}: {message}"


def _sign_in(client: httpx.Client, args: argparse.Namespace) -> None:
    token = args.token or os.environ.get("HERON_TOKEN", "")
    if not token:
        email = args.email or os.environ.get("HERON_ADMIN_EMAIL", "")
        if not email:
            raise SeedError("say who signs in: --token (or HERON_TOKEN), or --email")
        password = os.environ.get("HERON_ADMIN_PASSWORD", "")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif not password:
            password = getpass.getpass(f"Password for {email}: ")
        reply = client.post("/auth/login", json={"email": email, "password": password})
        if reply.status_code != 200:
            raise SeedError(f"could not sign in as {email}: {_problem(reply)}")
        token = reply.json()["token"]
    client.headers["authorization"] = f"Bearer {token}"


def _activate(client: httpx.Client) -> None:
    reply = client.get(f"/api/plugins/{PLUGIN}")
    if reply.status_code != 200:
        raise SeedError(f"cannot read the {PLUGIN} plugin: {_problem(reply)}")
    found = reply.json()["data"]
    if found["status"] == "error":
        raise SeedError(f"the {PLUGIN} plugin does not load: {found.get('error', '')}")
    steps = {"available": ["install", "activate"], "inactive": ["activate"]}
    for action in steps.get(found["status"], []):
        done = client.post(f"/api/plugins/{PLUGIN}/{action}")
        if done.status_code >= 400:
            raise SeedError(f"could not {action} the {PLUGIN} plugin: {_problem(done)}")


def _seed_batch(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """One batch, retried while the plugin is getting ready or the system is busy."""
    for attempt in range(RETRIES + 1):
        reply = client.post(f"/api/plugins/{PLUGIN}/seed", json=body)
        if reply.status_code == 201:
            return dict(reply.json()["data"])
        # 404: the activation has not reached this gateway yet; 409: a concurrent batch took
        # a slug; 429/503: busy. Nothing of a refused batch was written. (Not 504: a batch
        # that took too long may still have been written, and is not sent twice.)
        if reply.status_code in (404, 409, 429, 503) and attempt < RETRIES:
            wait = float(reply.headers.get("retry-after", "0") or 0)
            time.sleep(max(wait, 0.5 * 2**attempt))
            continue
        raise SeedError(f"the seed was refused: {_problem(reply)}")
    raise AssertionError("unreachable")


def cmd_seed(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    if args.items < 0:
        console.print("heron: --items must be 0 or more")
        return 2
    batch = max(1, min(args.batch, 1000))
    started = time.monotonic()
    try:
        with httpx.Client(base_url=args.url, timeout=60.0) as client:
            _sign_in(client, args)
            _activate(client)
            # First the collections, users, categories and authors, then the articles.
            first = _seed_batch(client, {"items": 0, "users": not args.no_users, "seed": args.seed})
            done = 0
            columns = (
                TextColumn("Seeding articles"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            bodies: list[dict[str, Any]] = []
            for number, start in enumerate(range(done, args.items, batch), start=1):
                body: dict[str, Any] = {"items": min(batch, args.items - start), "users": False}
                if args.seed is not None:
                    body["seed"] = args.seed + number
                bodies.append(body)
            with (
                Progress(*columns, console=console, disable=args.quiet) as progress,
                ThreadPoolExecutor(max(1, args.parallel)) as pool,
            ):
                task = progress.add_task("seed", total=args.items, completed=done)
                # A few batches at once: one is checked while another is written.
                for answer in pool.map(lambda body: _seed_batch(client, body), bodies):
                    done += answer["items"]
                    progress.update(task, completed=done)
    except SeedError as exc:
        console.print(f"heron: {exc}")
        return 1
    except httpx.HTTPError as exc:
        console.print(f"heron: cannot reach Heron at {args.url}: {exc}")
        return 1
    elapsed = time.monotonic() - started
    new = ", ".join(first["collections"]) or "none new"
    console.print(
        f"Seeded {done} articles in {elapsed:.1f} s ({done / elapsed:.0f}/s); "
        f"collections: {new}; new users: {first['users']}.",
        soft_wrap=True,
    )
    return 0


def add_parser(sub: Any) -> None:
    seed = sub.add_parser(
        "seed",
        help="fill a running Heron with demo collections, items and users",
        description="Seed realistic demo content through the demo-data plugin (activated if "
        "it is not): the collections categories, authors and articles, demo users, and "
        "--items articles. Signs in with --token (or HERON_TOKEN), or --email (or "
        "HERON_ADMIN_EMAIL) and the password from HERON_ADMIN_PASSWORD, stdin, or a prompt.",
    )
    seed.add_argument("--items", type=int, default=1000, help="how many articles (default 1000)")
    seed.add_argument(
        "--url",
        default=os.environ.get("HERON_URL", "http://127.0.0.1:8000"),
        help="the gateway (default: $HERON_URL or http://127.0.0.1:8000)",
    )
    seed.add_argument("--token", default="", help="an API token (default: $HERON_TOKEN)")
    seed.add_argument("--email", default="", help="sign in as (default: $HERON_ADMIN_EMAIL)")
    seed.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    seed.add_argument("--batch", type=int, default=500, help="articles per request (at most 1000)")
    seed.add_argument("--parallel", type=int, default=2, help="requests at once (default 2)")
    seed.add_argument("--seed", type=int, default=None, help="the same seed makes the same data")
    seed.add_argument("--no-users", action="store_true", help="make no demo users")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.set_defaults(func=cmd_seed)
