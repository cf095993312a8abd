"""TokenBucket: exact bounds, FIFO fairness, cancellation safety and pauses.

The bound checks run on trio's virtual clock (autojump), so 10 s of 1,000 callers take
milliseconds and no timing is measured against a noisy machine; one smaller run on each real
backend checks the same invariants with the real clock.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import anyio
import pytest
import trio.testing

from commbox_async import ConfigurationError, TokenBucket

pytestmark = pytest.mark.anyio


def max_in_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best = 0
    for i, t in enumerate(stamps):
        j = bisect.bisect_right(stamps, t + window - 1e-9)
        best = max(best, j - i)
    return best


async def run_load(bucket: TokenBucket, callers: int, duration: float) -> list[float]:
    stamps: list[float] = []
    start = anyio.current_time()

    async def caller() -> None:
        while anyio.current_time() - start < duration:
            await bucket.acquire()
            if anyio.current_time() - start < duration:
                stamps.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
    return stamps


@pytest.fixture
def virtual_trio() -> Any:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_bound_and_long_run_rate_with_1000_callers(anyio_backend: Any) -> None:
    rate, burst, duration = 200.0, 20, 10.0
    bucket = TokenBucket(rate, burst)
    stamps = await run_load(bucket, 1000, duration)
    for window in (0.1, 0.5, 1.0, 2.5):
        assert max_in_window(stamps, window) <= burst + rate * window + 1e-9
    long_run = (len(stamps) - burst) / duration
    assert abs(long_run - rate) / rate < 0.01


async def test_bound_on_real_clock() -> None:
    rate, burst = 500.0, 5
    bucket = TokenBucket(rate, burst)
    stamps = await run_load(bucket, 200, 0.6)
    # Real sleeps only ever oversleep, which can lower the count but never raise it.
    assert max_in_window(stamps, 0.2) <= burst + rate * 0.2
    assert len(stamps) <= burst + rate * 0.6 + 1


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_waiters_are_served_first_come_first_served(anyio_backend: Any) -> None:
    bucket = TokenBucket(10, 1)
    order: list[int] = []

    async def caller(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(caller, i)
            await anyio.sleep(0.001)  # arrive in order
    assert order == list(range(30))


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_cancelled_waiters_consume_nothing_and_block_no_one(anyio_backend: Any) -> None:
    rate = 10.0
    bucket = TokenBucket(rate, 1)
    await bucket.acquire()  # empty the bucket
    got: list[tuple[int, float]] = []
    start = anyio.current_time()

    async def waiter(i: int, cancel_after: float | None) -> None:
        with anyio.move_on_after(math.inf if cancel_after is None else cancel_after):
            await bucket.acquire()
            got.append((i, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        # 0 is the head and gets cancelled while sleeping on the clock; 1..3 are cancelled while
        # queued; 4 and 5 must then be served at the steady rate as if the others never were.
        tg.start_soon(waiter, 0, 0.05)
        await anyio.sleep(0)
        for i in (1, 2, 3):
            tg.start_soon(waiter, i, 0.02)
            await anyio.sleep(0)
        tg.start_soon(waiter, 4, None)
        await anyio.sleep(0)
        tg.start_soon(waiter, 5, None)
    assert [i for i, _ in got] == [4, 5]
    assert got[0][1] == pytest.approx(1 / rate, abs=1e-6)
    assert got[1][1] == pytest.approx(2 / rate, abs=1e-6)


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_pause_stops_everyone_then_resumes_at_rate(anyio_backend: Any) -> None:
    bucket = TokenBucket(100, 10)
    start = anyio.current_time()
    await bucket.pause(2.0)
    stamps = []
    for _ in range(3):
        await bucket.acquire()
        stamps.append(anyio.current_time() - start)
    assert stamps[0] >= 2.0
    assert stamps[2] - stamps[0] == pytest.approx(0.02, abs=1e-6)
    # A shorter pause does not shorten a longer one.
    await bucket.pause(5.0)
    await bucket.pause(1.0)
    t = anyio.current_time()
    await bucket.acquire()
    assert anyio.current_time() - t >= 5.0 - 1e-9


async def test_fast_path_does_not_wait() -> None:
    bucket = TokenBucket(1, 3)
    assert [await bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0)])
def test_invalid_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ConfigurationError):
        TokenBucket(rate, burst)
