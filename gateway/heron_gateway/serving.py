"""How the gateway is served: uvicorn's options, shared with the benchmark's floor servers.

One definition, so a floor measured by `make bench` runs on exactly the gateway's settings.
"""

from __future__ import annotations

from typing import Any

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "log_config": None,  # the process's own logging setup applies
    "access_log": False,  # replaced by the gateway's JSON access log middleware
    "server_header": False,
}
