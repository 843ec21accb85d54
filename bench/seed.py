"""Seed the bench collection through the public API (concurrently) or in bulk, with progress.

Every request is signed in as the run's first admin (writes need a bearer token). The items
are `published`, so the anonymous read scenarios see them all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from bench.bulk import bulk_insert
from bench.content import COLLECTION, COLLECTION_SCHEMA, item_payload
from bench.errors import BenchError
from bench.progress import Progress

RETRIES = 5


@dataclass(frozen=True)
class SeedResult:
    ids: list[str]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else 0.0


async def _create_collection(client: httpx.AsyncClient) -> str:
    """Create the bench collection (or find it, kept from an earlier run); its id."""
    reply = await client.post(
        "/api/collections", json={"name": COLLECTION, "schema": COLLECTION_SCHEMA}
    )
    if reply.status_code == 409:
        reply = await client.get(f"/api/collections/{COLLECTION}")
    if not reply.is_success:
        raise BenchError(f"creating the collection failed: {reply.status_code} {reply.text}")
    collection_id: str = reply.json()["data"]["id"]
    return collection_id


async def _create_item(client: httpx.AsyncClient, n: int, run_key: str) -> str:
    # The idempotency key makes a retry after a lost answer safe: no duplicate item.
    headers = {"Idempotency-Key": f"bench-{run_key}-{n}"}
    payload = item_payload(n)
    last = ""
    for attempt in range(RETRIES):
        try:
            reply = await client.post("/api/content", json=payload, headers=headers)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if reply.status_code == 201:
                item_id: str = reply.json()["data"]["id"]
                return item_id
            last = f"{reply.status_code} {reply.text[:300]}"
            if reply.status_code < 500 and reply.status_code != 429:
                break
        await asyncio.sleep(0.1 * 2**attempt)
    raise BenchError(f"seeding item {n} failed: {last}")


async def _seed(
    base_url: str, count: int, concurrency: int, bulk_url: str | None, token: str, author_id: str
) -> list[str]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30, headers=headers
    ) as client:
        collection_id = await _create_collection(client)
        if bulk_url is not None:
            return await bulk_insert(bulk_url, collection_id, count, author_id)
        ids: list[str | None] = [None] * count
        progress = Progress("seeding", count)
        run_key = f"{time.time_ns():x}"
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:  # shared iterator: each number is taken by exactly one worker
                ids[n] = await _create_item(client, n, run_key)
                progress.advance()

        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, count)):
                group.create_task(worker())
    return [i for i in ids if i is not None]


def seed(
    base_url: str,
    count: int,
    concurrency: int,
    *,
    token: str,
    author_id: str,
    bulk_url: str | None = None,
) -> SeedResult:
    """`count` items through the API as the admin whose bearer `token` is given (`author_id`),
    or with `bulk_url` straight into that database, authored by `author_id`."""
    started = time.monotonic()
    try:
        ids = asyncio.run(_seed(base_url, count, concurrency, bulk_url, token, author_id))
    except* BenchError as group:
        raise group.exceptions[0] from None
    return SeedResult(ids, time.monotonic() - started)
