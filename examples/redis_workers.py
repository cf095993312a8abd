"""Two workers (processes) sending one list of messages under one rate limit, shared in Redis.

    COMMBOX_TOKEN=... REDIS_URL=redis://localhost:6379/0 python examples/redis_workers.py

CommBox limits an API key, not a process: two workers with a bucket each would send at twice
the rate and earn 429s. Here both take their limit from one key in Redis (GCRA, on Redis's own
clock), split the messages by a hash of their key, and keep a journal each, so either can be
re-run alone. The parent starts the workers and reports how long the whole send took: with the
shared limit it is the rate's time (``--messages`` / ``--rate``), however many workers there are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import anyio

from commbox_async import AsyncCommBox, NewObject
from commbox_async.bulk import BulkMessage
from commbox_async.redis_throttle import RedisThrottle  # pip install 'commbox-async[redis]'


def every_message(count: int, stream_id: int) -> Iterator[BulkMessage]:
    for i in range(count):
        key = f"promo-{i:05d}"
        yield BulkMessage(
            key=key,
            stream_id=stream_id,
            payload=NewObject.sms(user_stream_provider_id=f"97250{i:07d}", message=f"Sale! {key}"),
        )


async def worker(worker: int, workers: int, args: argparse.Namespace) -> None:
    throttle = RedisThrottle(
        os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
        key="commbox:rate:mybrand",  # one key per API key
        rate=args.rate,
        burst=args.burst,
        fallback_workers=workers,  # Redis down: rate / workers locally, never unthrottled
    )
    mine = (
        m
        for m in every_message(args.messages, args.stream)
        if zlib.crc32(m.key.encode()) % workers == worker  # this worker's slice
    )
    async with AsyncCommBox(throttle=throttle) as cb:
        report = await cb.bulk.send(mine, journal=f"{args.journal}.{worker}.sqlite")
    print(f"worker {worker}: {dict(report.counts)}", flush=True)


def main(args: argparse.Namespace) -> int:
    if "WORKER" in os.environ:  # a worker process
        anyio.run(worker, int(os.environ["WORKER"]), int(os.environ["WORKERS"]), args)
        return 0
    start = time.monotonic()
    procs = [
        subprocess.Popen(  # noqa: S603 - this very program, as a worker
            [sys.executable, __file__, *sys.argv[1:]],
            env={**os.environ, "WORKER": str(i), "WORKERS": str(args.workers)},
        )
        for i in range(args.workers)
    ]
    codes = [p.wait() for p in procs]
    print(
        f"{args.workers} workers sent {args.messages} messages in {time.monotonic() - start:.2f}s"
    )
    return max(codes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--stream", type=int, default=532)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--journal", default="promo")
    sys.exit(main(parser.parse_args()))
