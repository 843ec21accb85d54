"""Raw ASGI floor: `GET /bytes/<n>` answers n bytes of JSON from memory, nothing else.

Any other method reads the request's body to its end first (and drops it): the floor of an
upload is receiving its bytes, answered with a body as small as an upload's answer.

Served by uvicorn with the gateway's settings (uvloop, httptools, same workers, no access log,
no server header), so the only difference from a gateway response is Heron's own code.
"""

from __future__ import annotations

import argparse

from starlette.types import Receive, Scope, Send

from bench.floors import serve

MAX_BODY = 16 * 1024 * 1024

_responses: dict[int, tuple[bytes, list[tuple[bytes, bytes]]]] = {}


def _response(size: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A JSON document of exactly `size` bytes (at least 12) and its headers, built once."""
    size = max(12, min(size, MAX_BODY))
    cached = _responses.get(size)
    if cached is None:
        body = b'{"data":"' + b"x" * (size - 11) + b'"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % size)]
        cached = _responses[size] = (body, headers)
    return cached


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] not in ("GET", "HEAD"):
        while (await receive()).get("more_body", False):
            pass
    tail = scope["path"].rpartition("/")[2]
    body, headers = _response(int(tail) if tail.isdigit() else 0)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve("bench.floors.asgi:app", port=args.port, workers=args.workers, lifespan="off")


if __name__ == "__main__":
    main()
