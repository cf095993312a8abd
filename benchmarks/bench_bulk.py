"""Bulk-send throughput and pacing, through the in-process fake.

Part 1: 10,000 new conversations (``POST /streams/{id}/objects``) at concurrency 16, throttle
off. The baseline is a bare ``asyncio.gather`` + semaphore loop over a raw ``httpx.AsyncClient``
on the same fake transport, POSTing the same bodies and reading each new id; against it,
``cb.bulk.send`` with a SQLite journal on disk (every message recorded before and after its
request). Each round uses a fresh fake; rounds alternate and the best of each is kept, so
noise hurts both alike. Goal: the journal-backed sender >= 0.8x the bare loop.

Part 2: 2,000 sends with ``rate_limit=400`` (the default burst of 10).
Goal: the total time (median of 3 runs) within 2% of N/R = 5 s.

Reproduce: ``nox -s bench -- bench_bulk``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import report

from commbox_async import NewObject
from commbox_async.bulk import BulkMessage
from commbox_async.testing import FakeCommBox

N = 10_000
CONCURRENCY = 16
ROUNDS = 3
STREAM = 532
RATE, RATE_N = 400.0, 2_000


def payload(i: int) -> NewObject:
    return NewObject.sms(user_stream_provider_id="972500000000", message=f"order-{i:06d}")


def messages(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield BulkMessage(key=f"order-{i:06d}", stream_id=STREAM, payload=payload(i))


async def bare_loop() -> float:
    fake = FakeCommBox()
    sem = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": "Bearer t", "Accept": "application/json"}
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:

        async def one(i: int) -> int:
            async with sem:
                r = await client.post(
                    f"/streams/{STREAM}/objects",
                    json={"data": payload(i).to_wire()},
                    headers=headers,
                )
                r.raise_for_status()
                return int(r.json()["data"]["objectId"])

        start = time.perf_counter()
        ids = await asyncio.gather(*(one(i) for i in range(N)))
        elapsed = time.perf_counter() - start
    assert len(set(ids)) == N == len(fake.objects)
    return N / elapsed


async def bulk_sender(journal: Path) -> float:
    fake = FakeCommBox()
    async with fake.client(rate_limit=None) as cb:
        start = time.perf_counter()
        report_ = await cb.bulk.send(
            messages(N), journal=journal, concurrency=CONCURRENCY, keep_outcomes=False
        )
        elapsed = time.perf_counter() - start
    assert report_.counts["sent"] == N == len(fake.objects)
    return N / elapsed


async def paced(journal: Path) -> float:
    fake = FakeCommBox()
    async with fake.client(rate_limit=RATE) as cb:
        start = time.perf_counter()
        report_ = await cb.bulk.send(messages(RATE_N), journal=journal, concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - start
    assert report_.counts["sent"] == RATE_N
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bare, ours = [], []
        for r in range(ROUNDS):
            bare.append(await bare_loop())
            ours.append(await bulk_sender(Path(tmp) / f"journal-{r}.sqlite"))
        ratio = max(ours) / max(bare)
        runs = []
        for r in range(ROUNDS):
            gc.collect()  # the fakes of the runs above are garbage: collect them now, not mid-run
            runs.append(await paced(Path(tmp) / f"paced-{r}.sqlite"))
    elapsed = statistics.median(runs)
    expected = RATE_N / RATE
    error = abs(elapsed - expected) / expected
    report(
        "bench_bulk",
        [
            {"sender": "bare gather + semaphore, raw httpx", "msgs/s": max(bare), "ratio": 1.0},
            {"sender": "cb.bulk.send, SQLite journal", "msgs/s": max(ours), "ratio": ratio},
        ],
        {
            "messages": N,
            "concurrency": CONCURRENCY,
            "throughput target": ">= 0.8",
            "throughput met": ratio >= 0.8,
            f"{RATE_N} sends at {RATE:g}/s: seconds (median of {ROUNDS})": elapsed,
            "all runs": " / ".join(f"{x:.3f}" for x in runs),
            "N/R seconds": expected,
            "pacing error %": 100 * error,
            "pacing within 2%": error <= 0.02,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
