"""The machine's floors: the least a Python server (and a gRPC hop) can cost here."""

from __future__ import annotations

from typing import Any

import uvicorn
from heron_gateway.serving import UVICORN_OPTIONS


def serve(target: str, *, port: int, workers: int, **extra: Any) -> None:
    """Run a floor server on loopback with the gateway's own uvicorn options."""
    uvicorn.run(
        target,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        **UVICORN_OPTIONS,
        **extra,
    )
