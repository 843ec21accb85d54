"""Command line of the benchmark: flags → `Options`, then run and exit with its status."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from bench.errors import BenchError
from bench.options import Options
from bench.scenarios import SCENARIOS

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start Heron, seed it, drive load with wrk, compare with the machine's floors.",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="SQLite and no Redis instead of PostgreSQL + Redis (production)",
    )
    parser.add_argument("--items", type=int, default=1000, help="items to seed (default 1000)")
    parser.add_argument(
        "--duration", type=int, default=None, help="seconds of load per scenario (default 10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="seconds of discarded load first (default 2)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway worker processes (default 1)"
    )
    parser.add_argument(
        "--unpinned",
        action="store_true",
        help="let the servers and the load generator share every core (as with several "
        "gateway workers on a small machine)",
    )
    parser.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated scenario keys to run (default: all); see --list",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 3 s per scenario, 1 s warm-up"
    )
    parser.add_argument(
        "--sequential-requests",
        type=int,
        default=None,
        help="requests of each sequential-latency scenario (default 300, 100 with --quick)",
    )
    parser.add_argument(
        "--seed-concurrency", type=int, default=16, help="concurrent seeding requests"
    )
    parser.add_argument(
        "--seed",
        dest="seed_via",
        choices=("auto", "api", "bulk"),
        default="auto",
        help="seed through the public API, or in bulk into the service's database "
        "(default auto: the API up to 10,000 items, bulk above)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="name the result files reference-* so they can be committed",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "HERON_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL URL allowed to CREATE/DROP DATABASE (production mode)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("HERON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis URL handed to the services (production mode)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


def parse_options(argv: list[str] | None = None) -> Options | None:
    """The options, or None when the command only listed scenarios."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.key:22} {scenario.title}")
        return None
    scenarios: tuple[str, ...] | None = None
    if args.scenarios:
        scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
        known = {s.key for s in SCENARIOS}
        unknown = [s for s in scenarios if s not in known]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; see --list")
    if args.items < 1 or args.connections < 1 or args.workers < 1:
        parser.error("--items, --connections and --workers must be at least 1")
    duration = args.duration if args.duration is not None else (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    sequential = args.sequential_requests or (100 if args.quick else 300)
    if duration < 1 or warmup < 0:
        parser.error("--duration must be at least 1 and --warmup not negative")
    return Options(
        embedded=args.embedded,
        items=args.items,
        duration=duration,
        warmup=warmup,
        connections=args.connections,
        workers=args.workers,
        pinned=not args.unpinned,
        scenarios=scenarios,
        quick=args.quick,
        reference=args.reference,
        sequential_requests=sequential,
        seed_concurrency=max(1, args.seed_concurrency),
        seed_via=args.seed_via,
        pg_admin_url=args.pg_admin_url,
        redis_url=args.redis_url,
        results_dir=RESULTS_DIR,
    )


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds through every `finally`, so servers are stopped and databases dropped.
    print("\nbench: terminated; stopping everything and cleaning up", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    if options is None:
        return
    signal.signal(signal.SIGTERM, _terminate)
    # Imported here so `--list` and `--help` stay instant.
    from bench.runner import run

    try:
        run(options)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything was stopped and cleaned up", file=sys.stderr)
        sys.exit(130)
