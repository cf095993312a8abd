"""1,000 concurrent callers at 200 requests/s, burst 20, for 10 s (real clock).

Reported per limiter: the most acquisitions in any 1 s window (the bound is burst + rate*1 =
220), and the long-run rate over the steady part (total minus the initial burst, over 10 s).
aiolimiter runs on the same load in the same run as the reference, in its natural form
(AsyncLimiter(200, 1)) and in the form with the same burst (AsyncLimiter(20, 0.1)).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable

from _common import report
from aiolimiter import AsyncLimiter

from commbox_async import TokenBucket

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


if __name__ == "__main__":
    asyncio.run(main())
