"""The bench's plugin (bench/plugin), installed as an installer lays a package out, and
activated through the API by the scenario that measures it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from bench.errors import BenchError

PACKAGE = Path(__file__).resolve().parent / "plugin" / "heron_bench_plugin"
NAME = "bench-hook"
PROPAGATION_SECONDS = 2.0  # every process fetches the active plugins each second


def install(site: Path) -> Path:
    """The plugin's code and `.dist-info` (with its entry point) under `site`, for PYTHONPATH."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE, site / PACKAGE.name, dirs_exist_ok=True)
    info = site / "heron_bench_plugin-1.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: heron-bench-plugin\nVersion: 1.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[heron.plugins]\n{NAME} = heron_bench_plugin:manifest\n"
    )
    return site


def activate(base_url: str, token: str, collection: str) -> None:
    """Install (if needed) and activate the plugin, wait until every process knows, and
    check with one create in `collection` that the hook is called."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        status = client.get(f"/api/plugins/{NAME}")
        if status.status_code != 200:
            raise BenchError(f"the bench plugin is not found: {status.text}")
        if status.json()["data"]["status"] == "available":
            client.post(f"/api/plugins/{NAME}/install").raise_for_status()
        client.post(f"/api/plugins/{NAME}/activate").raise_for_status()
        time.sleep(PROPAGATION_SECONDS)
        probe = {"collection": collection, "title": "bench hook probe", "data": {}}
        client.post("/api/content", json=probe).raise_for_status()
        stats = client.get(f"/api/plugins/{NAME}").json()["data"]["stats"]
        if not stats.get("content:beforeCreate", {}).get("calls"):
            raise BenchError(f"the bench plugin's hook was not called: {stats}")
