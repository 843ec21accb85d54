"""One benchmark run: start everything, seed, run each scenario beside its floor, report."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import httpx

from bench.content import COLLECTION
from bench.database import analyze
from bench.errors import BenchError
from bench.features import detect
from bench.machine import Pinning, ensure_wrk, machine_facts, plan_pinning
from bench.measures import LatencyResult, LoadResult
from bench.options import Options
from bench.passwords import argon2_verify_ms
from bench.processes import Server, postgres_cpu_seconds
from bench.record import FloorRun, Outcome, RunRecord, TargetCheck
from bench.report import markdown, write_results
from bench.scenarios import (
    HOT_ITEMS,
    SCENARIOS,
    Context,
    Figures,
    LoadPlan,
    Scenario,
    SequentialPlan,
)
from bench.seed import seed
from bench.sequential import run_sequential
from bench.signin import Session, sign_in
from bench.stack import Stack
from bench.wrk import run_wrk

FLOOR_NAMES = {"asgi": "raw ASGI", "echo": "echo hop", "asgi-2w": "raw ASGI, 2 workers"}
UNPINNED = plan_pinning(1, pinned=False)
SIZE_SAMPLES = 20

R = TypeVar("R", LoadResult, LatencyResult)
CpuShare = dict[str, float]  # server name → ms of CPU per request
Rss = dict[str, dict[str, int]]  # server name → its RSS (see Server.rss)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class ScenarioRunner:
    """Runs scenarios and the floors they are compared with (each floor size measured once)."""

    def __init__(
        self, stack: Stack, options: Options, pinning: Pinning, ctx: Context, session: Session
    ) -> None:
        self.stack = stack
        self.options = options
        self.pinning = pinning
        self.ctx = ctx
        self.session = session
        self.floors: dict[tuple[str, int], FloorRun] = {}
        self.floor_runs: list[FloorRun] = []
        self.outcomes: dict[str, Outcome] = {}
        self.argon2_ms: float | None = None
        # Memory of the measured servers after the last warm-up and after its measured run.
        self.rss_marks: tuple[Rss, Rss] = ({}, {})

    def _cpu(self, servers: list[Server]) -> dict[str, float]:
        snapshot = {s.name: s.cpu_seconds() for s in servers}
        if servers and servers[0] in self.stack.services and not self.options.embedded:
            snapshot["postgres"] = postgres_cpu_seconds()
        return snapshot

    def metered(self, servers: list[Server], measure: Callable[[], R]) -> tuple[R, CpuShare]:
        """Run `measure` and charge each server's CPU time to the requests it answered; note
        the servers' memory before and after."""
        start = self.stack.rss(servers)
        before = self._cpu(servers)
        result = measure()
        after = self._cpu(servers)
        self.rss_marks = (start, self.stack.rss(servers))
        n = max(1, result.requests)
        return result, {k: round((after[k] - before[k]) * 1000 / n, 3) for k in after}

    def load(
        self,
        url: str,
        servers: list[Server],
        plan: LoadPlan | None = None,
        pinning: Pinning | None = None,
    ) -> tuple[LoadResult, CpuShare]:
        """A warm-up run (discarded), then the measured one."""

        def once(seconds: int) -> LoadResult:
            return run_wrk(
                url,
                duration=seconds,
                connections=self.options.connections,
                pinning=pinning or self.pinning,
                paths_file=plan.paths_file if plan else None,
                headers=plan.headers if plan else None,
            )

        if self.options.warmup:
            once(self.options.warmup)
        return self.metered(servers, lambda: once(self.options.duration))

    def prime(self, plan: LoadPlan, base_url: str) -> None:
        """Request each of the plan's paths once (16 at a time), so its cache holds them."""
        paths = [plan.path]
        if plan.paths_file is not None:
            paths = plan.paths_file.read_text().split()

        async def fetch_all() -> None:
            queue = iter(paths)
            async with httpx.AsyncClient(
                base_url=base_url, headers=plan.headers, timeout=30
            ) as client:

                async def worker() -> None:
                    for path in queue:
                        reply = await client.get(path)
                        if not reply.is_success:
                            raise BenchError(f"GET {path} answered {reply.status_code}")

                await asyncio.gather(*(worker() for _ in range(16)))

        asyncio.run(fetch_all())

    def body_size(self, plan: LoadPlan, base_url: str) -> int:
        """The median size of the scenario's response bodies, to size its floor."""
        paths = [plan.path]
        if plan.paths_file is not None:
            paths = plan.paths_file.read_text().split()[:SIZE_SAMPLES]
        sizes = []
        with httpx.Client(base_url=base_url, headers=plan.headers, timeout=10) as c:
            for path in paths:
                reply = c.get(path)
                if not reply.is_success:
                    raise BenchError(f"GET {path} answered {reply.status_code}: {reply.text}")
                sizes.append(len(reply.content))
        return int(statistics.median(sizes))

    def load_floor(self, kind: str, size: int) -> FloorRun:
        key = (kind, size)
        if key not in self.floors:
            pinning = None
            if kind == "asgi":
                url = f"{self.stack.asgi_floor_url}/bytes/{size}"
                servers = self.stack.asgi_floor
            elif kind == "asgi-2w":
                url = f"{self.stack.asgi_floor_2w_url}/bytes/{size}"
                servers, pinning = self.stack.asgi_floor_2w, UNPINNED
            else:
                url = f"{self.stack.echo_floor_url}/sized/{size}"
                servers = self.stack.echo_floor
            log(f"  floor: {FLOOR_NAMES[kind]}, {size:,} B body")
            result, cpu = self.load(url, servers, pinning=pinning)
            floor = FloorRun(FLOOR_NAMES[kind], size, "load", result, cpu)
            self.floors[key] = floor
            self.floor_runs.append(floor)
        return self.floors[key]

    def sequential(
        self, base_url: str, plan: SequentialPlan, servers: list[Server]
    ) -> tuple[LatencyResult, CpuShare]:
        """Warm-up requests (discarded), then the measured ones."""

        def send(count: int, first: int) -> LatencyResult:
            return run_sequential(
                base_url,
                plan.method,
                plan.path,
                plan.make_body,
                count=count,
                first=first,
                headers=plan.headers,
            )

        warmup = max(5, self.options.sequential_requests // 10)
        send(warmup, 0)
        return self.metered(servers, lambda: send(self.options.sequential_requests, warmup))

    def sequential_floor(self, plan: SequentialPlan) -> FloorRun:
        """The echo hop, sent the scenario's own bodies by the same client."""
        if plan.make_body is None:
            raise BenchError("a sequential scenario without a body has no floor yet")
        floor_plan = SequentialPlan("POST", "/echo", plan.make_body)
        size = len(plan.make_body(0))
        log(f"  floor: echo hop, sequential, {size:,} B body")
        result, cpu = self.sequential(self.stack.echo_floor_url, floor_plan, self.stack.echo_floor)
        floor = FloorRun("echo hop", size, "sequential", result, cpu)
        self.floor_runs.append(floor)
        return floor

    def keep_token_fresh(self) -> None:
        """Sign in again once half the token's lifetime has passed (long runs outlive it)."""
        if not self.session.fresh():
            self.session = sign_in(
                self.ctx.base_url, self.stack.admin_email, self.stack.admin_password
            )
            self.ctx = replace(self.ctx, token=self.session.token)

    def baseline_ms(self, scenario: Scenario) -> float | None:
        """The unavoidable cost a scenario's target allows for (argon2 for a login)."""
        if scenario.key != "login":
            return None
        if self.argon2_ms is None:
            self.argon2_ms = argon2_verify_ms()
            log(f"  argon2id verify with the auth service's settings: {self.argon2_ms:.2f} ms")
        return self.argon2_ms

    def relative(self, scenario: Scenario, result: LoadResult | LatencyResult) -> float | None:
        """The other scenario's req/s ÷ this one's: how many of its cost this one is."""
        other = self.outcomes.get(scenario.compare_to or "")
        if other is None or not isinstance(other.result, LoadResult):
            return None
        if not isinstance(result, LoadResult) or not result.rps:
            return None
        return round(other.result.rps / result.rps, 3)

    def run(self, scenario: Scenario) -> Outcome:
        outcome = self._run(scenario)
        self.outcomes[scenario.key] = outcome
        return outcome

    def _run(self, scenario: Scenario) -> Outcome:
        base = Outcome(scenario.key, scenario.title, scenario.kind, "n/a")
        missing = sorted(f for f in scenario.requires if not self.ctx.features.get(f))
        if missing:
            return replace(base, note=f"not built yet ({', '.join(missing)})")
        if scenario.plan is None:
            return replace(base, note="scenario not written yet")
        if scenario.via not in self.stack.gateways:
            return replace(base, note=self.stack.unavailable.get(scenario.via, "no such gateway"))
        base_url = self.stack.gateway_urls[scenario.via]
        servers = self.stack.servers_for(scenario.via)
        two_workers = scenario.via == "two-workers"
        note = "; ".join(
            text for feature, text in scenario.prefers.items() if not self.ctx.features.get(feature)
        )
        log(f"scenario {scenario.key}: {scenario.title}")
        self.keep_token_fresh()
        plan = scenario.plan(self.ctx)
        result: LoadResult | LatencyResult
        try:
            if isinstance(plan, LoadPlan):
                if plan.prime:
                    self.prime(plan, base_url)
                size = self.body_size(plan, base_url)
                url = f"{base_url}{plan.path}"
                pinning = UNPINNED if two_workers else None
                result, cpu = self.load(url, servers, plan, pinning=pinning)
                rss = self.rss_marks
                if not result.requests:
                    raise BenchError(
                        f"no request completed in {self.options.duration} s "
                        f"({result.errors} errors): each takes longer than the run"
                    )
                floor_kind = f"{scenario.floor}-2w" if two_workers else scenario.floor
                floor = self.load_floor(floor_kind, size)
                ratio = round(result.rps / floor.result.rps, 4) if floor.result.rps else None
            else:
                result, cpu = self.sequential(base_url, plan, servers)
                rss = self.rss_marks
                floor = self.sequential_floor(plan)
                size = floor.body_bytes
                ratio = round(floor.result.p50_ms / result.p50_ms, 4) if result.p50_ms else None
        except BenchError as exc:
            self.stack.check_alive()  # a dead server ends the run; anything else, the scenario
            return replace(base, status="error", note=str(exc)[:500])
        figures = Figures(
            result.rps,
            result.p50_ms,
            result.p99_ms,
            ratio,
            relative=self.relative(scenario, result),
            baseline_ms=self.baseline_ms(scenario),
        )
        checks = tuple(TargetCheck(t.label, t.check(figures)) for t in scenario.targets)
        if result.errors:
            note = "; ".join(filter(None, [note, f"{result.errors} failed requests"]))
        return replace(
            base,
            status="ok",
            note=note,
            body_bytes=size,
            result=result,
            floor=floor,
            ratio=ratio,
            targets=checks,
            cpu_ms_per_request=cpu,
            relative=figures.relative,
            compared_with=scenario.compare_to or "",
            baseline_ms=figures.baseline_ms,
            rss_start=rss[0],
            rss_end=rss[1],
        )


def _new_record(options: Options, pinning: Pinning, started_at: dt.datetime) -> RunRecord:
    postgres = "" if options.embedded else "; PostgreSQL (a system service) is not pinned"
    return RunRecord(
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        mode=options.mode,
        description="",
        settings={
            "items": options.items,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "connections": options.connections,
            "wrk_threads": 1,
            "gateway_workers": options.workers,
            "sequential_requests": options.sequential_requests,
            "quick": options.quick,
        },
        machine=machine_facts(),
        pinning=pinning.note + postgres,
    )


def _seed(
    stack: Stack, options: Options, record: RunRecord, workdir: Path
) -> tuple[Context, Session]:
    """Sign in, seed the collection, find the features, and return what scenarios may use."""
    session = sign_in(stack.gateway_url, stack.admin_email, stack.admin_password)
    bulk_url = stack.content_database_url if options.bulk_seed else None
    seeded = seed(
        stack.gateway_url,
        options.items,
        options.seed_concurrency,
        token=session.token,
        author_id=session.user_id,
        bulk_url=bulk_url,
    )
    log(f"seeded {len(seeded.ids):,} items in {seeded.seconds:.1f} s ({seeded.rate:,.0f}/s)")
    record.seed = {
        "items": len(seeded.ids),
        "seconds": round(seeded.seconds, 1),
        "per_second": round(seeded.rate, 1),
        "via": "bulk insert into the database" if bulk_url else "public REST API",
    }
    for url in stack.database_urls:  # production mode only
        analyze(url)
    paths_file = workdir / "item-paths.txt"
    paths_file.write_text("".join(f"/api/content/{i}\n" for i in seeded.ids))
    hot_file = workdir / "hot-item-paths.txt"
    hot_file.write_text("".join(f"/api/content/{i}\n" for i in seeded.ids[:HOT_ITEMS]))
    record.features = detect(stack.gateway_url, f"/api/content/{seeded.ids[0]}")
    built = [f for f, ok in record.features.items() if ok]
    log(f"features built: {', '.join(built) or 'none of ' + ', '.join(record.features)}")
    ctx = Context(
        base_url=stack.gateway_url,
        collection=COLLECTION,
        item_ids=tuple(seeded.ids),
        item_paths_file=paths_file,
        hot_paths_file=hot_file,
        features=record.features,
        token=session.token,
        admin_email=stack.admin_email,
        admin_password=stack.admin_password,
    )
    return ctx, session


def run(options: Options) -> None:
    """The whole run; results are written and the table printed only if it completes."""
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    pinning = plan_pinning(options.workers, options.pinned)
    ensure_wrk()
    pinning.pin_this_process()
    selected = [s for s in SCENARIOS if options.scenarios is None or s.key in options.scenarios]
    record = _new_record(options, pinning, started_at)
    log(f"{options.mode} mode; {record.pinning}")
    with (
        tempfile.TemporaryDirectory(prefix="heron-bench-") as tmp,
        Stack(options, pinning, Path(tmp)) as stack,
    ):
        log("starting Heron")
        stack.start_heron()
        record.description = stack.description
        record.heron_processes = [s.name for s in stack.heron_servers()]
        log("starting the floor servers")
        stack.start_floors()
        record.rss_start = stack.rss()
        ctx, session = _seed(stack, options, record, Path(tmp))
        runner = ScenarioRunner(stack, options, pinning, ctx, session)
        for scenario in selected:
            record.outcomes.append(runner.run(scenario))
        record.floors = runner.floor_runs
        stack.check_alive()
        time.sleep(2)  # let the last requests drain: RSS "at rest"
        record.rss_end = stack.rss()
        log("stopping servers")
    record.seconds = round(time.monotonic() - started, 1)
    table = markdown(record)
    json_path, md_path = write_results(record, table, options, started_at)
    print(table, flush=True)
    log(f"results written to {json_path} and {md_path.name}")
