"""1,000 concurrent callers at 200 requests/s, burst 20, for 10 s (real clock).

Reported per limiter: the most acquisitions in any 1 s window (the bound is burst + rate*1 =
220), and the long-run rate over the steady part (total minus the initial burst, over 10 s).
aiolimiter runs on the same load in the same run as the reference, in its natural form
(AsyncLimiter(200, 1)) and in the form with the same burst (AsyncLimiter(20, 0.1)).

The adaptive part: ``rate_limit="adaptive"`` against the fake's server-side limit of 50/s
(burst 50, 429 with Retry-After in whole seconds), 16 workers, real clock, 45 s; the baseline in
the same run is the fixed default (10/s, burst 10) on the same fake. Reported: the rate of
answered requests over the last 15 s and its ratio to the limit, when the trailing 10 s rate
first stays within 10% of the limit, the share of 429s, and the rate the throttle ended at.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable

from _common import report
from aiolimiter import AsyncLimiter

from commbox_async import RateLimitError, TokenBucket
from commbox_async.testing import FakeCommBox

RATE, BURST, CALLERS, DURATION = 200.0, 20, 1_000, 10.0


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max(
        (bisect.bisect_right(stamps, t + window - 1e-9) - i for i, t in enumerate(stamps)),
        default=0,
    )


async def load(acquire: Callable[[], Awaitable[object]]) -> list[float]:
    stamps: list[float] = []
    start = time.monotonic()

    async def caller() -> None:
        while (now := time.monotonic() - start) < DURATION:
            await acquire()
            now = time.monotonic() - start
            if now < DURATION:
                stamps.append(now)

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return stamps


WORKER = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[6])
from bench_throttle import load_until
from commbox_async.redis_throttle import RedisThrottle
url, out, start_at, callers = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rate, burst = float(sys.argv[5].split(",")[0]), int(sys.argv[5].split(",")[1])
async def main():
    throttle = RedisThrottle(url, key="commbox:bench", rate=rate, burst=burst, timeout=2)
    stamps = await load_until(throttle.acquire, start_at, callers)
    open(out, "w").write(json.dumps(stamps))
asyncio.run(main())
"""


async def load_until(
    acquire: Callable[[], Awaitable[object]], start_at: float, callers: int
) -> list[float]:
    """Like load(), on the wall clock from ``start_at`` (shared by processes)."""
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    stamps: list[float] = []

    async def caller() -> None:
        while time.time() - start_at < DURATION:
            await acquire()
            now = time.time() - start_at
            if now < DURATION:
                stamps.append(now)

    await asyncio.gather(*(caller() for _ in range(callers)))
    return stamps


def redis_rows() -> list[dict[str, object]]:
    """RedisThrottle with one process of 1,000 callers, and four of 250, sharing one limit."""
    import json
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    binary = shutil.which("redis-server")
    if binary is None:
        print("Redis rows skipped: no redis-server (apt-get install -y redis-server)")
        return []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    rows: list[dict[str, object]] = []
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "worker.py"
            script.write_text(WORKER)
            for processes in (1, 4):
                start_at = time.time() + 3
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            str(script),
                            f"redis://127.0.0.1:{port}/0",
                            str(Path(tmp) / f"{processes}-{i}.json"),
                            str(start_at),
                            str(CALLERS // processes),
                            f"{RATE},{BURST}",
                            str(Path(__file__).parent),
                        ]
                    )
                    for i in range(processes)
                ]
                for p in procs:
                    p.wait(120)
                stamps = [
                    t
                    for i in range(processes)
                    for t in json.loads((Path(tmp) / f"{processes}-{i}.json").read_text())
                ]
                long_run = (len(stamps) - BURST) / DURATION
                rows.append(
                    {
                        "limiter": f"RedisThrottle, {processes} process(es)",
                        "max in any 1s": max_in_window(stamps),
                        "bound": int(BURST + RATE),
                        "long-run req/s": long_run,
                        "error %": 100 * abs(long_run - RATE) / RATE,
                    }
                )
    finally:
        server.kill()
    return rows


SERVER_LIMIT, ADAPTIVE_SECONDS, BASELINE_SECONDS, WORKERS = 50.0, 45.0, 15.0, 16


async def against_the_fake(rate_limit: object, seconds: float) -> dict[str, object]:
    fake = FakeCommBox(rate_limit=SERVER_LIMIT)
    ok: list[float] = []
    rejected = 0
    async with fake.client(rate_limit=rate_limit, max_retries=0) as cb:
        start = time.monotonic()

        async def worker() -> None:
            nonlocal rejected
            while time.monotonic() - start < seconds:
                try:
                    await cb.system.status()
                    ok.append(time.monotonic() - start)
                except RateLimitError:
                    rejected += 1

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        final = cb.throttle.rate if isinstance(cb.throttle, TokenBucket) else 0.0
    ok.sort()
    trail = [
        (s, (bisect.bisect_left(ok, s) - bisect.bisect_left(ok, s - 10)) / 10)
        for s in range(10, int(seconds) + 1)
    ]
    converged = next(
        (
            s
            for i, (s, _) in enumerate(trail)
            if all(abs(r - SERVER_LIMIT) <= 0.1 * SERVER_LIMIT for _, r in trail[i:])
        ),
        None,
    )
    tail = min(15.0, seconds)
    rate = sum(1 for t in ok if seconds - tail <= t < seconds) / tail
    return {
        "limiter": f"rate_limit={rate_limit!r} vs fake limit {SERVER_LIMIT:g}/s",
        "seconds": seconds,
        "answered req/s (last 15 s)": rate,
        "x the limit": rate / SERVER_LIMIT,
        "within 10% from (s)": "never" if converged is None else converged,
        "429 %": 100 * rejected / max(1, rejected + len(ok)),
        "rate at the end": final,
    }


def adaptive_rows() -> list[dict[str, object]]:
    baseline = asyncio.run(against_the_fake(10.0, BASELINE_SECONDS))
    adaptive = asyncio.run(against_the_fake("adaptive", ADAPTIVE_SECONDS))
    return [baseline, adaptive]


async def main() -> None:
    rows = []
    limiters: list[tuple[str, int, Callable[[], Awaitable[object]]]] = []
    bucket = TokenBucket(RATE, BURST)
    limiters.append((f"commbox TokenBucket({RATE:g}, burst={BURST})", BURST, bucket.acquire))
    for label, limiter, burst in [
        ("aiolimiter AsyncLimiter(200, 1)", AsyncLimiter(RATE, 1), int(RATE)),
        ("aiolimiter AsyncLimiter(20, 0.1)", AsyncLimiter(BURST, BURST / RATE), BURST),
    ]:
        limiters.append((label, burst, limiter.acquire))
    for label, burst, acquire in limiters:
        stamps = await load(acquire)
        long_run = (len(stamps) - burst) / DURATION
        rows.append(
            {
                "limiter": label,
                "max in any 1s": max_in_window(stamps),
                "bound": int(BURST + RATE),
                "long-run req/s": long_run,
                "error %": 100 * abs(long_run - RATE) / RATE,
            }
        )
    rows += redis_rows()
    ours = rows[0]
    report(
        "bench_throttle",
        rows,
        {
            "callers": CALLERS,
            "seconds": DURATION,
            "never over bound": ours["max in any 1s"] <= BURST + RATE,
            "long-run error under 1%": ours["error %"] < 1.0,
            "at least as exact as aiolimiter": all(
                ours["max in any 1s"] <= r["max in any 1s"] for r in rows[1:]
            ),
        },
    )


def adaptive_report() -> None:
    rows = adaptive_rows()
    baseline, adaptive = rows
    report(
        "bench_throttle_adaptive",
        rows,
        {
            "adaptive vs the fixed default": adaptive["answered req/s (last 15 s)"]  # type: ignore[operator]
            / baseline["answered req/s (last 15 s)"],
            "within 10% of the limit by 30 s": adaptive["within 10% from (s)"] != "never"
            and adaptive["within 10% from (s)"] <= 30,  # type: ignore[operator]
            "429s under 5%": adaptive["429 %"] < 5.0,  # type: ignore[operator]
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
    adaptive_report()
