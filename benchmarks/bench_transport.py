"""5,000 GETs against a local uvicorn server: AsyncCommBox (throttle off) vs bare httpx.

Both sides use the same pool size and concurrency and decode the JSON; the runs alternate
(bare, client, bare, client, ...) and the best of each is kept, so a noisy neighbour hurts
both equally. Target: AsyncCommBox >= 0.9x the bare client's throughput.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from _common import report, static_server

from commbox_async import AsyncCommBox

N = 5_000
CONCURRENCY = 16
ROUNDS = 3


async def run_bare(base: str) -> float:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one() -> None:
            async with sem:
                r = await client.get("/managers/520760", headers={"Authorization": "Bearer t"})
                r.raise_for_status()
                r.json()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(N)))
        return N / (time.perf_counter() - start)


async def run_client(base: str) -> float:
    async with AsyncCommBox(
        token="t",
        base_url=base,
        rate_limit=None,
        max_connections=CONCURRENCY,
        max_keepalive_connections=CONCURRENCY,
    ) as cb:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one() -> None:
            async with sem:
                await cb.request("GET", "/managers/{manager_id}", manager_id=520760)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(N)))
        return N / (time.perf_counter() - start)


async def main() -> None:
    with static_server() as base:
        await run_bare(base)  # warm-up
        bare, ours = [], []
        for _ in range(ROUNDS):
            bare.append(await run_bare(base))
            ours.append(await run_client(base))
    rows = [
        {"client": "bare httpx.AsyncClient", "req/s": max(bare), "ratio": 1.0},
        {
            "client": "AsyncCommBox (throttle off)",
            "req/s": max(ours),
            "ratio": max(ours) / max(bare),
        },
    ]
    ratio = max(ours) / max(bare)
    report(
        "bench_transport",
        rows,
        {
            "requests": N,
            "concurrency": CONCURRENCY,
            "ratio": ratio,
            "target": ">= 0.9",
            "met": ratio >= 0.9,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
