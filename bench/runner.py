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
from typing import ParamSpec, TypeVar

import httpx

from bench.content import COLLECTION
from bench.database import analyze
from bench.errors import BenchError
from bench.features import detect
from bench.machine import Pinning, ensure_wrk, machine_facts, plan_pinning
from bench.measures import LatencyResult, LoadResult
from bench.options import Options
from bench.passwords import argon2_verify_ms
from bench.processes import PeakRss, Server, postgres_cpu_seconds
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
P = ParamSpec("P")
T = TypeVar("T")
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
        # The last sequential scenario's peak RSS over its servers' RSS before it (bytes).
        self.rss_growth: dict[str, int] = {}
        # CPU the servers spent on a sequential plan's untimed work (its prepare and cleanup)
        # during the measured run: not charged to the requests.
        self.untimed_cpu: dict[str, float] = {}

    def _cpu(self, servers: list[Server]) -> dict[str, float]:
        snapshot = {s.name: s.cpu_seconds() for s in servers}
        if servers and servers[0] in self.stack.services and not self.options.embedded:
            snapshot["postgres"] = postgres_cpu_seconds()
        return snapshot

    def metered(self, servers: list[Server], measure: Callable[[], R]) -> tuple[R, CpuShare]:
        """Run `measure` and charge each server's CPU time to the requests it answered (less
        what the plan's untimed work spent meanwhile); note the servers' memory before and
        after."""
        start = self.stack.rss(servers)
        self.untimed_cpu = {}
        before = self._cpu(servers)
        result = measure()
        after = self._cpu(servers)
        self.rss_marks = (start, self.stack.rss(servers))
        n = max(1, result.requests)
        spent = {k: after[k] - before[k] - self.untimed_cpu.get(k, 0.0) for k in after}
        return result, {k: round(max(0.0, v) * 1000 / n, 3) for k, v in spent.items()}

    def uncharged(self, servers: list[Server], work: Callable[P, T]) -> Callable[P, T]:
        """`work`, with the CPU the servers spend while it runs added to `untimed_cpu`."""

        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            before = self._cpu(servers)
            try:
                return work(*args, **kwargs)
            finally:
                after = self._cpu(servers)
                for k, v in after.items():
                    self.untimed_cpu[k] = self.untimed_cpu.get(k, 0.0) + v - before[k]

        return run

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
        """Warm-up requests (discarded), then the measured ones; with `sample_rss`, the
        servers' peak RSS over both, as growth over their RSS before (`rss_growth`)."""
        prepare = self.uncharged(servers, plan.prepare) if plan.prepare else None
        cleanup = self.uncharged(servers, plan.cleanup) if plan.cleanup else None

        def send(count: int, first: int) -> LatencyResult:
            return run_sequential(
                base_url,
                plan.method,
                plan.path,
                plan.make_body,
                count=count,
                first=first,
                headers=plan.headers,
                body_bytes=plan.body_bytes,
                prepare=prepare,
                cleanup=cleanup,
            )

        requests = plan.requests or self.options.sequential_requests
        warmup = plan.warmup if plan.warmup is not None else max(5, requests // 10)
        self.rss_growth = {}
        if not plan.sample_rss:
            send(warmup, 0)
            return self.metered(servers, lambda: send(requests, warmup))
        before = self.stack.rss(servers)
        with PeakRss(servers) as peak:
            send(warmup, 0)
            measured = self.metered(servers, lambda: send(requests, warmup))
        # A peak below the RSS before is no growth (memory freed meanwhile).
        self.rss_growth = {
            name: max(0, top - before[name]["rss_bytes"]) for name, top in peak.peak.items()
        }
        return measured

    def sequential_floor(self, plan: SequentialPlan, kind: str) -> FloorRun:
        """The scenario's own bodies, sent by the same client: to the echo hop, or to the raw
        ASGI floor (which reads each body and answers a small one, as an upload's answer)."""
        if kind == "asgi":
            size = plan.body_bytes or 0
            floor_plan = replace(
                plan, path="/bytes/600", prepare=None, cleanup=None, sample_rss=False
            )
            url, servers = self.stack.asgi_floor_url, self.stack.asgi_floor
        else:
            if plan.make_body is None:
                raise BenchError("the echo floor needs the scenario's bodies; use the ASGI one")
            body = plan.make_body(0)
            if not isinstance(body, bytes):
                raise BenchError("the echo floor sends whole bodies, not streamed ones")
            size = len(body)
            floor_plan = SequentialPlan("POST", "/echo", plan.make_body)
            url, servers = self.stack.echo_floor_url, self.stack.echo_floor
        log(f"  floor: {FLOOR_NAMES[kind]}, sequential, {size:,} B body")
        result, cpu = self.sequential(url, floor_plan, servers)
        floor = FloorRun(FLOOR_NAMES[kind], size, "sequential", result, cpu)
        self.floor_runs.append(floor)
        return floor

    def keep_token_fresh(self) -> None:
        """Sign in again once half the token's lifetime has passed (long runs outlive it)."""
        if not self.session.fresh():
            self.session = sign_in(
                self.ctx.base_url, self.stack.admin_email, self.stack.admin_password
            )
            self.ctx = replace(self.ctx, token=self.session.token)

    def baseline(self, scenario: Scenario, plan: LoadPlan | SequentialPlan) -> tuple[str, float]:
        """The unavoidable cost of each request, timed by the bench (argon2 for a login, the
        rendering for a variant's first request), and what it is; ("", 0) for none."""
        if isinstance(plan, SequentialPlan) and plan.baseline is not None:
            log(f"  {plan.baseline[0]}: {plan.baseline[1]:.2f} ms")
            return plan.baseline
        if scenario.key != "login":
            return "", 0.0
        if self.argon2_ms is None:
            self.argon2_ms = argon2_verify_ms()
            log(f"  argon2id verify with the auth service's settings: {self.argon2_ms:.2f} ms")
        return "argon2id verify", self.argon2_ms

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
        notes = [
            text for feature, text in scenario.prefers.items() if not self.ctx.features.get(feature)
        ]
        log(f"scenario {scenario.key}: {scenario.title}")
        self.keep_token_fresh()
        result: LoadResult | LatencyResult
        floor: FloorRun | None = None
        ratio: float | None = None
        throughput: float | None = None
        growth: dict[str, int] = {}  # sampled peak RSS over the RSS before (sample_rss)
        try:
            plan = scenario.plan(self.ctx)
            notes.append(plan.note)
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
                if scenario.floor != "none":
                    floor_kind = f"{scenario.floor}-2w" if two_workers else scenario.floor
                    floor = self.load_floor(floor_kind, size)
                    ratio = round(result.rps / floor.result.rps, 4) if floor.result.rps else None
            else:
                result, cpu = self.sequential(base_url, plan, servers)
                if plan.after is not None:
                    notes.append(plan.after())
                rss, growth = self.rss_marks, self.rss_growth
                size = plan.body_bytes or 0
                if plan.body_bytes and result.p50_ms:
                    throughput = round(plan.body_bytes / 1024 / 1024 / (result.p50_ms / 1000), 1)
                if scenario.floor != "none":
                    floor = self.sequential_floor(plan, scenario.floor)
                    size = floor.body_bytes
                    ratio = round(floor.result.p50_ms / result.p50_ms, 4) if result.p50_ms else None
            baseline_label, baseline_ms = self.baseline(scenario, plan)
        except BenchError as exc:
            self.stack.check_alive()  # a dead server ends the run; anything else, the scenario
            return replace(base, status="error", note=str(exc)[:500])
        figures = Figures(
            result.rps,
            result.p50_ms,
            result.p99_ms,
            ratio,
            relative=self.relative(scenario, result),
            baseline_ms=baseline_ms if baseline_label else None,
            rss_growth_mb={k: v / 1024 / 1024 for k, v in growth.items()},
        )
        checks = tuple(TargetCheck(t.label, t.check(figures)) for t in scenario.targets)
        if result.errors:
            notes.append(f"{result.errors} failed requests")
        return replace(
            base,
            status="ok",
            note="; ".join(filter(None, notes)),
            body_bytes=size,
            result=result,
            floor=floor,
            ratio=ratio,
            targets=checks,
            cpu_ms_per_request=cpu,
            relative=figures.relative,
            compared_with=scenario.compare_to or "",
            baseline_ms=figures.baseline_ms,
            baseline_label=baseline_label,
            rss_start=rss[0],
            rss_end=rss[1],
            rss_peak_growth=growth,
            throughput_mb_s=throughput,
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
        quick=options.quick,
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
