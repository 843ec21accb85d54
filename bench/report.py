"""The run's Markdown table (printed and saved) and its JSON record under bench/results/."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from bench.measures import LoadResult
from bench.options import Options
from bench.record import FloorRun, Outcome, RunRecord

RSS_TARGET_MB = 120
RSS_TARGET_BYTES = RSS_TARGET_MB * 1024 * 1024
DASH = "—"


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def _share(ratio: float) -> str:
    # Small shares need a decimal to be compared between runs at all.
    return f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def _cpu(cpu: dict[str, float]) -> str:
    parts = [f"{name} {ms:.2f}" for name, ms in cpu.items()]
    return " · ".join([*parts, f"**total {sum(cpu.values()):.2f}**"]) if parts else DASH


def _cpu_rows(record: RunRecord) -> list[str]:
    rows = [
        f"| {o.title} | {_cpu(o.cpu_ms_per_request)} |" for o in record.outcomes if o.status == "ok"
    ]
    rows += [
        f"| floor: {_floor_label(f)}{'' if f.kind == 'load' else ', sequential'} "
        f"| {_cpu(f.cpu_ms_per_request)} |"
        for f in record.floors
    ]
    return rows


def _floor_label(floor: FloorRun) -> str:
    return f"{floor.name}, {_bytes(floor.body_bytes)}"


def _scenario_row(o: Outcome) -> str:
    if o.status != "ok" or o.result is None:
        status = "n/a" if o.status == "n/a" else "error"
        return f"| {o.title} | {status} | | | | | | | | | {o.note} |"
    r = o.result
    f = o.floor
    load = isinstance(r, LoadResult)
    rps = f"{r.rps:,.0f}" if load else DASH
    floor_rps = f"{f.result.rps:,.0f}" if f and isinstance(f.result, LoadResult) else DASH
    ratio = DASH if o.ratio is None else _share(o.ratio) + ("" if load else " (p50)")
    targets = "; ".join(f"{'✓' if t.met else '✗'} {t.label}" for t in o.targets) or DASH
    facts = [] if load else [f"{r.requests} requests"]
    if o.relative is not None:
        facts.append(f"{o.relative:.2f} times the cost of {o.compared_with}")
    if o.throughput_mb_s is not None and o.body_bytes:
        facts.append(f"{_bytes(o.body_bytes)} ÷ p50 = {o.throughput_mb_s:,.1f} MB/s")
    if o.rss_peak_growth:
        grew = ", ".join(
            f"{name} {_growth(o.rss_peak_growth[name])}"
            for name in PEAK_PROCESSES
            if name in o.rss_peak_growth
        )
        facts.append(f"peak RSS {grew}")
    if o.baseline_ms is not None:
        facts.append(f"{o.baseline_label or 'baseline'} {o.baseline_ms:.2f} ms")
    notes = "; ".join(filter(None, [*facts, o.note]))
    return (
        f"| {o.title} | {rps} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {r.errors} | "
        f"{_floor_label(f) if f else DASH} | {floor_rps} | "
        f"{_ms(f.result.p50_ms) if f else DASH} | {ratio} | {targets} | {notes} |"
    )


# The processes an upload's bytes pass through: their peaks are the notes' (all are recorded).
PEAK_PROCESSES = ("gateway", "media")


def _growth(n: int) -> str:
    return f"+{n / 1024 / 1024:.1f} MB"


def _floor_row(f: FloorRun) -> str:
    r = f.result
    rps = f"{r.rps:,.0f}" if isinstance(r, LoadResult) else DASH
    how = "wrk" if f.kind == "load" else f"sequential, {r.requests} requests"
    return (
        f"| {f.name} | {_bytes(f.body_bytes)} | {how} | {rps} | {_ms(r.p50_ms)} | "
        f"{_ms(r.p99_ms)} | {r.errors} |"
    )


def _rss_rows(record: RunRecord) -> list[str]:
    rows = []
    for name, end in record.rss_end.items():
        start = record.rss_start.get(name, {}).get("rss_bytes", 0)
        procs = end["processes"]
        largest = end["largest_bytes"]
        label = name if procs <= 1 else f"{name} ({procs} processes, largest {_mb(largest)})"
        target = DASH
        if name in record.heron_processes:
            # The target is per process: with several workers, the largest one counts.
            met = "✓" if largest < RSS_TARGET_BYTES else "✗"
            target = f"{met} < {RSS_TARGET_MB} MB per process"
        rows.append(f"| {label} | {_mb(start)} | {_mb(end['rss_bytes'])} | {target} |")
    return rows


def _scenario_rss_rows(record: RunRecord) -> list[str]:
    """Each scenario's processes, after its warm-up → after its measured run (total MB)."""
    rows = []
    for o in record.outcomes:
        if o.status != "ok" or not o.rss_end:
            continue
        cells = []
        for name, end in o.rss_end.items():
            start = o.rss_start.get(name, {}).get("rss_bytes", 0)
            grew = end["rss_bytes"] - start
            peak = o.rss_peak_growth.get(name)
            cells.append(
                f"{name} {_mb(start)} → {_mb(end['rss_bytes'])}"
                + (f" (+{grew / 1024 / 1024:.1f})" if grew >= 1024 * 1024 else "")
                + (f", peak {_growth(peak)} over before" if peak is not None else "")
            )
        rows.append(f"| {o.title} | {' · '.join(cells)} |")
    return rows


def markdown(record: RunRecord) -> str:
    s = record.settings
    m = record.machine
    built = [f for f, ok in record.features.items() if ok]
    missing = [f for f, ok in record.features.items() if not ok]
    seed = record.seed
    lines = [
        f"## Heron benchmark, {record.started_at}",
        "",
        f"- Mode: {record.description}; gateway workers: {s['gateway_workers']}",
        f"- Load: wrk -t1 -c{s['connections']}, {s['duration_s']} s per scenario after "
        f"{s['warmup_s']} s of warm-up; sequential scenarios: {s['sequential_requests']} "
        "requests from one client",
        f"- Seed: {seed.get('items', 0):,} items, {seed.get('via', '?')}, in "
        f"{seed.get('seconds', 0):.1f} s ({seed.get('per_second', 0):,.0f}/s)",
        f"- Pinning: {record.pinning}",
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, Python {m.get('python')}, "
        f"{m.get('wrk') or 'wrk'}; commit {m.get('commit')}",
        f"- Features built: {', '.join(built) or 'none'}"
        + (f" (not yet: {', '.join(missing)})" if missing else ""),
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | floor | floor req/s | floor p50 ms "
        "| vs floor | targets | notes |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
        *(_scenario_row(o) for o in record.outcomes),
        "",
        "| floor | body | measured with | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---|---:|---:|---:|---:|",
        *(_floor_row(f) for f in record.floors),
        "",
        "| CPU time per request during the measured run (ms) | by process |",
        "|---|---|",
        *_cpu_rows(record),
        "",
        "| process | RSS after start | RSS at end (at rest) | target |",
        "|---|---:|---:|---|",
        *_rss_rows(record),
        "",
        "| RSS during each scenario: after its warm-up → after its measured run (uploads: "
        "and the sampled peak over the RSS before the first request) | by process |",
        "|---|---|",
        *_scenario_rss_rows(record),
        "",
        "vs floor: req/s ÷ the floor's req/s at the same body size, in the same run "
        "(sequential: the floor's p50 ÷ the scenario's p50); 100 % = as fast as the floor. "
        f"Targets are reported, never asserted. Run took {record.seconds:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def write_results(
    record: RunRecord, table: str, options: Options, started: dt.datetime
) -> tuple[Path, Path]:
    """`<UTC timestamp>-<mode>.json` and `.md` (prefixed `reference-` with --reference)."""
    options.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{record.mode}"
    if options.reference:
        stem = f"reference-{stem}"
    json_path = options.results_dir / f"{stem}.json"
    md_path = options.results_dir / f"{stem}.md"
    document = {"schema": 1, **dataclasses.asdict(record)}
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(table)
    return json_path, md_path
